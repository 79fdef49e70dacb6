"""PEP 792 project status: what each marker means here, in one place.

A hosted project has exactly one status (``models.STATUSES``), ``active``
unless an owner or an administrator set another, with an optional reason:

- ``archived``: no new uploads; its files are served as before.
- ``quarantined``: no new uploads, and no file offered to installers: the
  simple pages (HTML and JSON) list none and the JSON API has no releases.
  Owners and administrators still see the files on the project page and
  download them under ``/packages/``.
- ``deprecated``: served as active; the project page says so.

The JSON simple pages carry the marker itself (``project-status``) so that
installers that read PEP 792 can tell why. The HTML pages do not: PEP 833
froze the HTML format, so new fields are JSON-only.
"""

from __future__ import annotations

from typing import Any

from ministry.core.errors import BadRequest, Forbidden
from ministry.core.models import (
    ARCHIVED,
    DEPRECATED,
    QUARANTINED,
    STATUSES,
    ProjectRecord,
)

#: A reason is a sentence or two, shown in pages and status lines.
MAX_REASON = 500


def check_status(status: str) -> str:
    """``status`` if it is a PEP 792 marker, else a 400 listing the markers."""
    if status not in STATUSES:
        raise BadRequest(f"Unknown project status {status!r}: use one of {', '.join(STATUSES)}.")
    return status


def check_reason(reason: str | None) -> str | None:
    """The reason as stored: stripped, None when empty; a 400 when too long or multi-line.

    A reason goes into HTTP status lines (where a line break would end the
    line), so it is one line of text.
    """
    if reason is None or not reason.strip():
        return None
    if len(reason) > MAX_REASON:
        raise BadRequest(f"The status reason is over {MAX_REASON} characters.")
    if any(char in reason for char in "\r\n\x00"):
        raise BadRequest("The status reason must be one line of text.")
    return reason.strip()


def describe(project: ProjectRecord) -> str:
    """``demo is quarantined (malware found)``: the status in a sentence."""
    why = f" ({project.status_reason})" if project.status_reason else ""
    return f"{project.display_name} is {project.status}{why}"


def refuse_upload(project: ProjectRecord | None) -> None:
    """A 403 naming the status and its reason if ``project`` takes no new uploads."""
    if project is not None and project.status in (ARCHIVED, QUARANTINED):
        raise Forbidden(f"{describe(project)}: it accepts no new uploads.")


def hides_files(project: ProjectRecord) -> bool:
    """Whether installers are offered none of the project's files."""
    return project.status == QUARANTINED


def quarantine_notice(project: ProjectRecord) -> str:
    """Why a quarantined project offers nothing to install, for a 4xx body."""
    return f"{describe(project)}: its files are not offered for download."


#: What the project page says of each status other than active.
_PAGE_NOTICES = {
    ARCHIVED: "this project takes no new uploads; its files can still be installed.",
    QUARANTINED: (
        "this project is considered unsafe to use: installers are offered none of its "
        "files. Its owners and administrators can still download them."
    ),
    DEPRECATED: "this project is no longer recommended and may have been superseded.",
}


def page_notice(project: ProjectRecord) -> str | None:
    """The warning the project page shows under its title, or None for an active project."""
    return _PAGE_NOTICES.get(project.status)


def status_json(project: ProjectRecord) -> dict[str, Any]:
    """PEP 792's JSON ``project-status``: ``{"status": ...}``, with ``reason`` if any."""
    document: dict[str, Any] = {"status": project.status}
    if project.status_reason:
        document["reason"] = project.status_reason
    return document

"""The simple repository API pages, as bytes ready to cache and serve.

``/simple/`` and ``/simple/<project>/`` in PEP 503 HTML (with the PEP 592
yank, PEP 629 version, PEP 658/714 metadata attributes) and PEP 691 JSON
(with the PEP 700 ``versions``, ``size`` and ``upload-time``), and the PEP 792
project status (``ministry.core.project_status``: a quarantined project's
page lists no file; the ``project-status`` key is JSON-only, PEP 833 having
frozen the HTML format). Repository version 1.4 throughout, since PEP 792's
marker is present (the optional keys of 1.2 and 1.3 may be left out).

The pages are built by joining lists of strings rather than through a
template engine: the index may list 100,000 projects and is rendered on every
cache miss, and a template call per project costs seconds where a join costs
milliseconds. Every value that reaches HTML goes through ``html.escape``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from typing import Any

from packaging.version import InvalidVersion, Version

from ministry.core.attestations import integrity_path
from ministry.core.models import FileRecord, ProjectRecord, format_time
from ministry.core.negotiate import HTML_V1, JSON_V1, TEXT_HTML
from ministry.core.project_status import hides_files, status_json

API_VERSION = "1.4"

_HTML_HEAD = (
    "<!DOCTYPE html>\n<html>\n<head>\n"
    '<meta charset="utf-8">\n'
    f'<meta name="pypi:repository-version" content="{API_VERSION}">\n'
)
_HTML_TAIL = "</body>\n</html>\n"
#: Stands in for an unparsable version in a sort key (the flag before it decides).
_NO_VERSION = Version("0")


def render_index(projects: list[ProjectRecord], serial: int, content_type: str) -> bytes:
    """The ``/simple/`` page: every hosted project, sorted by canonical name."""
    ordered = sorted(projects, key=lambda project: project.name)
    if _is_json(content_type):
        return _dump(
            {
                "meta": _meta(serial),
                "projects": [
                    {"name": project.display_name, "_last-serial": project.serial}
                    for project in ordered
                ],
            }
        )
    links = [
        f'<a href="{escape(project.name)}/">{escape(project.display_name)}</a><br>\n'
        for project in ordered
    ]
    return _html("Simple index", links)


class FileLines:
    """Each file's part of a project page, kept from one render of the page to the next.

    A big project's page is rendered again after every upload into it, and
    all but one of its ten thousand lines are as they were. Records are
    immutable, and the embedded store hands back the same record objects for
    files that did not change (``ministry.stores.sqlite.parsed_records``), so
    a line is kept for as long as the very object it was made from is listed;
    any other object (a yank rewrote the record) is rendered afresh, and a
    line whose file is gone is forgotten at the next render. One per page
    and format: the line depends on the format and on the URL function.
    """

    def __init__(self) -> None:
        self._lines: dict[int, tuple[FileRecord, str]] = {}
        #: Each listed version's sort key, and the versions in that order.
        self._versions: tuple[dict[str, tuple[bool, Version, str]], list[str]] = ({}, [])

    def lines(self, files: list[FileRecord], render: Callable[[FileRecord], str]) -> list[str]:
        """The line of each file, in order: kept if its record is the same object."""
        before, now = self._lines, {}
        out = []
        for record in files:
            kept = before.get(id(record))
            line = kept[1] if kept is not None and kept[0] is record else render(record)
            now[id(record)] = (record, line)
            out.append(line)
        self._lines = now  # replaced whole: a concurrent render loses lines, never mixes them
        return out

    def versions(self, files: list[FileRecord]) -> list[str]:
        """The files' distinct versions in PEP 440 order, as the JSON page lists them.

        Parsing five thousand version strings costs more than the rest of
        the page's render, so each is parsed once for as long as it is
        listed, and the order is kept while the set of versions is the same
        (an upload of a second file to a version, a yank).
        """
        before, ordered = self._versions
        now: dict[str, tuple[bool, Version, str]] = {}
        for record in files:
            if record.version not in now:
                key = before.get(record.version)
                now[record.version] = key if key is not None else version_key(record.version)
        if now.keys() != before.keys():
            ordered = sorted(now, key=now.__getitem__)
        self._versions = (now, ordered)  # one assignment, as the lines are
        return ordered


def render_project(
    project: ProjectRecord,
    files: list[FileRecord],
    file_url: Callable[[FileRecord], str],
    content_type: str,
    upload_time_known: Callable[[FileRecord], bool] = lambda record: True,
    kept: FileLines | None = None,
) -> bytes:
    """The ``/simple/<project>/`` page: every file, in upload order, and its status.

    ``file_url`` maps a record to the URL its bytes are served from, which
    the web layer owns; the page adds nothing to it but the hash fragment.
    ``upload_time_known`` says whether a record's ``upload_time`` may be
    served as ``upload-time``: not for a proxied file the upstream gave no
    upload time (``ministry.core.upstream_pages`` says why), whose entry
    then has none (PEP 700 makes it optional). ``kept`` holds the lines of
    the last render of this page and format, for a big hosted project.
    A quarantined project's page lists no file at all (PEP 792).
    """
    if hides_files(project):
        files = []
    kept = kept or FileLines()
    if _is_json(content_type):
        head = {
            "meta": _meta(project.serial),
            "name": project.name,
            "project-status": status_json(project),
            "versions": kept.versions(files),
        }
        # The files are joined in as text, each dumped once: the same document
        # as one dump of it all, with the key order kept ("files" last).
        entries = kept.lines(
            files,
            lambda record: _json_text(
                _file_json(record, file_url(record), upload_time_known(record))
            ),
        )
        return f'{_json_text(head)[:-1]},"files":[{",".join(entries)}]}}'.encode()
    title = f"Links for {project.display_name}"
    links = [f"<h1>{escape(title)}</h1>\n"]
    links.extend(kept.lines(files, lambda record: _file_link(record, file_url(record))))
    return _html(title, links)


def version_key(version: str) -> tuple[bool, Version, str]:
    """Sort key putting version strings in PEP 440 order.

    A string that is not a PEP 440 version (old files fetched through the
    proxy can carry one) sorts before all real versions, among its kind by
    text, rather than failing the whole page.
    """
    try:
        return (True, Version(version), version)
    except InvalidVersion:
        return (False, _NO_VERSION, version)


def _file_link(record: FileRecord, url: str) -> str:
    """One ``<a>`` of a project page, with the PEP 503/592/658/714 attributes."""
    # Hashes are escaped too: proxied records carry what an upstream page said.
    attributes = [f'href="{escape(url)}#sha256={escape(record.sha256)}"']
    if record.requires_python:
        attributes.append(f'data-requires-python="{escape(record.requires_python)}"')
    if record.yanked is not None:
        # Always with a value: pip reads a bare ``data-yanked`` as not yanked.
        attributes.append(f'data-yanked="{escape(record.yanked)}"')
    if record.serves_metadata:
        value = escape(f"sha256={record.metadata_sha256}")
        attributes.append(f'data-core-metadata="{value}"')
        attributes.append(f'data-dist-info-metadata="{value}"')
    return f"<a {' '.join(attributes)}>{escape(record.filename)}</a><br>\n"


def _file_json(record: FileRecord, url: str, dated: bool) -> dict[str, Any]:
    """One entry of a project page's PEP 691 ``files`` list.

    Only sha256 goes in ``hashes``: PEP 691 keys are ``hashlib.new`` names,
    which our blake2b-256 is not (it needs a digest_size), and md5 adds no
    safety. ``dist-info-metadata`` repeats ``core-metadata`` for clients
    older than PEP 714. ``provenance`` (PEP 740) is relative to the page,
    ``/simple/<project>/``, wherever the index is mounted.
    """
    metadata = {"sha256": record.metadata_sha256} if record.serves_metadata else False
    entry: dict[str, Any] = {
        "filename": record.filename,
        "url": url,
        "hashes": {"sha256": record.sha256},
        "requires-python": record.requires_python or None,
        "yanked": _yanked_json(record.yanked),
        "core-metadata": metadata,
        "dist-info-metadata": metadata,
        "size": record.size,
        "provenance": None if (path := integrity_path(record)) is None else f"../../{path}",
    }
    if dated:
        entry["upload-time"] = format_time(record.upload_time)
    return entry


def _yanked_json(reason: str | None) -> bool | str:
    """PEP 691's ``yanked``: False, or a reason, or True when the reason is empty.

    An empty string is falsy to every client, so a yank without a reason
    must be sent as ``true`` to count as a yank at all.
    """
    if reason is None:
        return False
    return reason or True


def _meta(serial: int) -> dict[str, Any]:
    return {"api-version": API_VERSION, "_last-serial": serial}


def _is_json(content_type: str) -> bool:
    """Whether ``content_type`` (from :func:`negotiate.choose`) wants JSON."""
    if content_type == JSON_V1:
        return True
    if content_type in (HTML_V1, TEXT_HTML):
        return False
    raise ValueError(f"not a simple API content type: {content_type!r}")


def _json_text(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _dump(document: dict[str, Any]) -> bytes:
    return _json_text(document).encode("utf-8")


def _html(title: str, body: list[str]) -> bytes:
    """A whole page around ``body``, which is already escaped."""
    head = f"{_HTML_HEAD}<title>{escape(title)}</title>\n</head>\n<body>\n"
    return "".join([head, *body, _HTML_TAIL]).encode("utf-8")

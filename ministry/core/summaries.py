"""A project's summary: the one line its latest release says it is, for the project list.

The project list shows each project's ``Summary`` (as PyPI's search results
do) without reading any file's metadata: both stores keep it in the project
record, with the version it came from, and replace it only with the summary
of a release at least as new. The rule is here, once, so that both stores
(and the SQLite migration that fills it in) decide alike:

- a file added gives its core metadata's summary, as release ``version``;
- ``:action=submit`` (register) with a ``summary`` gives that one, as the
  release its ``version`` field names;
- a summary from a release older than the one kept loses; an equal one
  wins (the last word on a release counts);
- a summary without a valid PEP 440 version (a registration naming none)
  is taken only while no versioned one is kept, and leaves the version unset.

A summary is kept as one line of at most :data:`MAX_SUMMARY` characters: it
is held in memory for every project, and a client may send megabytes. The
list shortens it further for the eye, in CSS.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.metadata import parse_email
from packaging.version import InvalidVersion, Version

#: Characters of a summary kept: Warehouse refuses longer ones.
MAX_SUMMARY = 512


def one_line(text: str) -> str:
    """``text`` with each run of whitespace (a folded header's newlines too) one space, capped."""
    return " ".join(text.split())[:MAX_SUMMARY]


def _version(text: str | None) -> Version | None:
    if text is None:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None


def supersedes(version: str | None, current: str | None) -> bool:
    """Whether a summary of release ``version`` replaces one kept from release ``current``.

    ``current`` None: no summary kept yet, or one without a version.
    """
    if current is None:
        return True
    offered, kept = _version(version), _version(current)
    return offered is not None and (kept is None or offered >= kept)


def replacement(
    summary: str, version: str | None, current: str | None
) -> tuple[str, str | None] | None:
    """The (summary, summary version) to keep when ``summary`` of release ``version`` is
    offered to a project whose summary came from ``current``; None when that one stays."""
    if not supersedes(version, current):
        return None
    return one_line(summary), current if _version(version) is None else version


def kept_release(versions: Iterable[str | None]) -> int | None:
    """Of releases offered in this order (their versions), the index of the one kept last.

    For filling summaries in from stored files (the SQLite migration,
    ``ministry-admin summaries fill``): only that one file's metadata need
    be read. None for no release.
    """
    kept: int | None = None
    kept_version: str | None = None
    for index, version in enumerate(versions):
        chosen = replacement("", version, kept_version)
        if chosen is not None:
            kept, kept_version = index, chosen[1]
    return kept


def registered_summary(info: dict[str, list[str]]) -> tuple[str, str | None] | None:
    """What a registration offers: its ``summary`` and ``version``; None without a summary."""
    summaries = info.get("summary")
    if not summaries:
        return None
    versions = info.get("version")
    return summaries[0], versions[0] if versions else None


def metadata_summary(data: bytes) -> str:
    """The ``Summary`` of core metadata bytes ('' when they have none), as it is kept."""
    value = parse_email(data)[0].get("summary")
    return one_line(value) if isinstance(value, str) else ""

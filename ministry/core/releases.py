"""A project's files seen as releases, for the project and release pages.

A release is the set of files sharing a version string, as in the JSON API
(:mod:`ministry.core.jsonapi`), whose rule for the release a project page
shows (:func:`~ministry.core.jsonapi.latest_version`) is reused so both agree.
The list of versions beside it comes a page at a time (:func:`versions_page`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from packaging.version import InvalidVersion, Version

from ministry.core.errors import NotFound
from ministry.core.jsonapi import latest_version
from ministry.core.models import FileRecord
from ministry.core.search import Paged, page_count
from ministry.core.simple import version_key

#: Releases listed on one page of a project's version history: a project of
#: thousands of versions would otherwise list them all on every page of it.
VERSIONS_PER_PAGE = 50


@dataclass(frozen=True)
class Release:
    """One version of a project and its files, in upload order."""

    version: str
    files: tuple[FileRecord, ...]

    @property
    def yanked(self) -> bool:
        """A release is yanked when every one of its files is (PEP 592)."""
        return all(record.yanked is not None for record in self.files)

    @property
    def yank_reason(self) -> str:
        return next((record.yanked for record in self.files if record.yanked), "")

    @property
    def uploaded(self) -> datetime:
        return min(record.upload_time for record in self.files)

    @property
    def prerelease(self) -> bool:
        try:
            return Version(self.version).is_prerelease
        except InvalidVersion:
            return False

    @property
    def origins(self) -> tuple[str, ...]:
        """Where the files came from (``FileRecord.origin``), each once, in file order."""
        return tuple(dict.fromkeys(record.origin for record in self.files))


def group_releases(files: Iterable[FileRecord]) -> list[Release]:
    """The releases of a project's files, newest version first."""
    grouped: dict[str, list[FileRecord]] = {}
    for record in files:
        grouped.setdefault(record.version, []).append(record)
    ordered = sorted(grouped, key=version_key, reverse=True)
    return [Release(version, tuple(grouped[version])) for version in ordered]


def current_release(releases: list[Release]) -> Release | None:
    """The release a project page shows: the JSON API's choice (latest final, not yanked)."""
    if not releases:
        return None
    chosen = latest_version({release.version: list(release.files) for release in releases})
    return next(release for release in releases if release.version == chosen)


def newer_release(releases: list[Release], shown: Release) -> Release | None:
    """The project's current release when it is newer than ``shown``, for an old version's page."""
    current = current_release(releases)
    if current is None or current.version == shown.version:
        return None
    try:
        return current if Version(current.version) > Version(shown.version) else None
    except InvalidVersion:
        return None


def find_release(releases: list[Release], version: str) -> Release | None:
    """The release named ``version``: its exact string, else an equal PEP 440 version.

    ``1.0.0`` finds a release uploaded as ``1.0``, as on PyPI; the page then
    redirects to the spelling the release was uploaded with.
    """
    for release in releases:
        if release.version == version:
            return release
    try:
        wanted = Version(version)
    except InvalidVersion:
        return None
    for release in releases:
        try:
            if Version(release.version) == wanted:
                return release
        except InvalidVersion:
            continue
    return None


@dataclass(frozen=True)
class VersionsPage(Paged):
    """One page of a project's releases, newest first, as the version list shows it."""

    releases: tuple[Release, ...]
    number: int
    pages: int
    total: int


def versions_page(
    releases: list[Release],
    number: int | None,
    current: Release | None = None,
    per_page: int = VERSIONS_PER_PAGE,
) -> VersionsPage:
    """Page ``number`` of ``releases`` (newest first); None: the page listing ``current``.

    A release page without a page number lists the versions around its own,
    so the version it shows is marked in the list. Raises NotFound past the
    last page (page 1 always exists, even when empty).
    """
    pages = page_count(len(releases), per_page)
    if number is None:
        at = releases.index(current) if current is not None else 0
        number = at // per_page + 1
    if not 1 <= number <= pages:
        raise NotFound(f"No page {number} of versions: there are {pages}.")
    start = (number - 1) * per_page
    return VersionsPage(tuple(releases[start : start + per_page]), number, pages, len(releases))

"""Read-side snapshots of the store, cached until the store says they changed.

Every read component (simple index, files, listing, JSON API, pages) asks the
catalog rather than the store, so a project's records are read once per
change, not once per request: serving a file or a page costs dictionary
look-ups, never a store round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred, succeed

from ministry.core.metadata import CoreMetadata, parse_core_metadata
from ministry.core.models import FileRecord, ProjectRecord
from ministry.interfaces import IMetadataStore
from ministry.web.cache import ALL, PageCache


@dataclass(frozen=True)
class ProjectView:
    """A project with its files, as of one serial."""

    project: ProjectRecord
    files: tuple[FileRecord, ...]
    by_filename: Mapping[str, FileRecord] = field(repr=False)

    @classmethod
    def of(cls, project: ProjectRecord, files: list[FileRecord]) -> ProjectView:
        return cls(project, tuple(files), {record.filename: record for record in files})


@dataclass(frozen=True)
class IndexView:
    """Every project, with the global serial."""

    serial: int
    projects: tuple[ProjectRecord, ...]


class _Absent:
    """The cached answer "no such project", so misses do not hit the store."""


ABSENT = _Absent()


class Catalog:
    """Cached views of the metadata store for the read paths."""

    def __init__(self, store: IMetadataStore, cache: PageCache) -> None:
        self.store = store
        self.cache = cache
        store.subscribe(cache.invalidate)

    def project(self, name: str) -> Deferred[ProjectView | None]:
        """The view of a canonical project name, or None if it is not hosted."""
        key = (name, "view")
        view = self.cache.get(key)
        if view is None:
            view = self.cache.fill(key, lambda: self._load_project(name))
        else:
            view = succeed(view)
        return view.addCallback(lambda found: None if found is ABSENT else found)

    async def _load_project(self, name: str) -> ProjectView | _Absent:
        project = await self.store.get_project(name)
        if project is None:
            return ABSENT
        return ProjectView.of(project, await self.store.list_files(name))

    def index(self) -> Deferred[IndexView]:
        """Every hosted project and the global serial."""
        key = (ALL, "index-view")
        view = self.cache.get(key)
        return succeed(view) if view is not None else self.cache.fill(key, self._load_index)

    async def _load_index(self) -> IndexView:
        serial = await self.store.last_serial()
        projects = await self.store.list_projects()
        return IndexView(serial, tuple(projects))

    def metadata(self, record: FileRecord) -> Deferred[bytes | None]:
        """The core metadata bytes of a file (immutable while the file exists)."""
        key = (record.project, "metadata", record.filename)
        data = self.cache.get(key)
        if data is not None:
            return succeed(data)
        return self.cache.fill(
            key, lambda: self.store.get_metadata(record.project, record.filename)
        )

    async def release_metadata(self, view: ProjectView) -> dict[str, CoreMetadata]:
        """Parsed core metadata per version, from the first file of each release."""
        found: dict[str, CoreMetadata] = {}
        for record in view.files:
            if record.version in found or record.metadata_sha256 is None:
                continue
            data = await self.metadata(record)
            if data is not None:
                found[record.version] = parse_core_metadata(data)
        return found

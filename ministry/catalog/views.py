"""Read-side snapshots of the store, cached until the store says they changed.

Every read component (simple index, files, listing, JSON API, pages) asks the
catalog rather than the store, so a project's records are read once per
change, not once per request: serving a file or a page costs dictionary
look-ups, never a store round trip.

With a proxy configured, a name the store does not hold is asked of the
upstream (``ministry.upstream.pages``), and its view is cached like a hosted one
until the deadline the proxy gives. The store is always asked first: a
project hosted here shadows its upstream namesake entirely, never merged with
it (the defence against dependency confusion). A name the proxy's name
policy keeps from the upstream (reserved here, denied, or not allowed) is a
404 that says why (``NotProxied``, raised by the proxy, not cached), so the
policy is applied in one place for the web and the mirror alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.web.resource import IResource

from ministry.catalog.cache import ALL, PageCache
from ministry.core.cooldown import CooldownException, HeldBack
from ministry.core.metadata import CoreMetadata, parse_core_metadata
from ministry.core.models import FileRecord, ProjectRecord
from ministry.core.upstream_pages import UpstreamFile
from ministry.interfaces import IMetadataStore

if TYPE_CHECKING:
    from ministry.upstream.pages import UpstreamPages


#: What a file record (and its upstream source) costs in memory, roughly.
RECORD_WEIGHT = 1024
#: What a project record costs in memory, roughly.
PROJECT_WEIGHT = 320


@dataclass(frozen=True)
class ProjectView:
    """A project with its files, as of one serial."""

    project: ProjectRecord
    files: tuple[FileRecord, ...]
    by_filename: Mapping[str, FileRecord] = field(repr=False)
    #: Where each file of a proxied project lives upstream; empty when hosted.
    sources: Mapping[str, UpstreamFile] = field(default_factory=dict, repr=False)
    #: The proxied files ``--upstream-min-age`` hides now and until when, for
    #: the project page (``held_back.html``); empty when hosted.
    held_back: tuple[HeldBack, ...] = ()
    #: The proxied project's cooldown exceptions, and the files they release early.
    exceptions: tuple[CooldownException, ...] = ()
    released_early: frozenset[str] = frozenset()
    #: The ``/packages/`` resource of each hosted file, built by the tree on
    #: the first request and kept as long as the view: the files are immutable
    #: and any change to the project replaces the view.
    file_resources: dict[str, IResource] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        project: ProjectRecord,
        files: list[FileRecord],
        sources: Mapping[str, UpstreamFile] | None = None,
        held_back: tuple[HeldBack, ...] = (),
        exceptions: tuple[CooldownException, ...] = (),
        released_early: Iterable[str] = (),
    ) -> ProjectView:
        by_filename = {record.filename: record for record in files}
        return cls(
            project,
            tuple(files),
            by_filename,
            sources or {},
            held_back=held_back,
            exceptions=exceptions,
            released_early=frozenset(released_early),
        )

    def upload_time_known(self, record: FileRecord) -> bool:
        """Whether ``record.upload_time`` is the file's upload time, to be served as such.

        False for a proxied file the upstream gave no upload time: it holds
        when this index first saw the file, for the cooldown only.
        """
        source = self.sources.get(record.filename)
        return source is None or source.upload_time_known

    def cache_weight(self) -> int:
        """Roughly the bytes of its records, for the page cache's bound."""
        held = len(self.held_back) + len(self.exceptions)
        return RECORD_WEIGHT * (1 + len(self.files) + len(self.sources) + held)


@dataclass(frozen=True)
class IndexView:
    """Every project, with the global serial."""

    serial: int
    projects: tuple[ProjectRecord, ...]
    #: Upstream projects cached by the proxy and not hosted here: listed by
    #: ``/simple/`` and ``/packages/``, left out of counts and the browser pages.
    cached: tuple[ProjectRecord, ...] = ()

    def cache_weight(self) -> int:
        """Roughly its bytes: a summary may be 512 characters, so those count as they are."""
        summaries = sum(len(project.summary) for project in self.projects)
        return PROJECT_WEIGHT * (len(self.projects) + len(self.cached)) + summaries


class _Absent:
    """The cached answer "no such project", so misses do not hit the store."""


ABSENT = _Absent()


class Catalog:
    """Cached views of the metadata store for the read paths."""

    def __init__(
        self, store: IMetadataStore, cache: PageCache, proxy: UpstreamPages | None = None
    ) -> None:
        self.store = store
        self.cache = cache
        self.proxy = proxy
        if proxy is not None:
            store.subscribe(proxy.changed)  # first: the views dropped next revalidate
            # None from the proxy: its list of cached projects changed.
            proxy.subscribe(lambda project: cache.drop(ALL if project is None else project))
        store.subscribe(cache.invalidate)

    def project(self, name: str) -> Deferred[ProjectView | None]:
        """The view of a canonical project name, or None if it is not hosted."""
        view = self.cache.get_or_fill((name, "view"), lambda: self._load_project(name))
        return view.addCallback(lambda found: None if found is ABSENT else found)

    def cached_project(self, name: str) -> ProjectView | None:
        """The view of a canonical project name if it is cached now, else None."""
        view = self.cache.get((name, "view"))
        return None if view is None or view is ABSENT else view

    async def _load_project(self, name: str) -> ProjectView | _Absent:
        project = await self.store.get_project(name)
        if project is not None:
            return ProjectView.of(project, await self.store.list_files(name))
        if self.proxy is None:
            return ABSENT
        # Only a definite "not hosted" reaches the upstream: a store error has
        # already propagated, so an outage never exposes an upstream namesake.
        found, expires = await self.proxy.project(name)
        self.cache.expire_at(name, expires)
        if found is None:
            return ABSENT
        return ProjectView.of(
            found.project,
            list(found.files),
            found.sources,
            found.held_back,
            found.exceptions,
            found.released_early,
        )

    def index(self) -> Deferred[IndexView]:
        """Every hosted project, the cached upstream ones, and the global serial."""
        return self.cache.get_or_fill((ALL, "index-view"), self._load_index)

    async def _load_index(self) -> IndexView:
        serial = await self.store.last_serial()
        projects = await self.store.list_projects()
        if self.proxy is None:
            return IndexView(serial, tuple(projects))
        hosted = {project.name for project in projects}
        cached = [project for project in self.proxy.cached_projects() if project.name not in hosted]
        return IndexView(serial, tuple(projects), tuple(cached))

    def file_metadata(self, view: ProjectView, record: FileRecord) -> Deferred[bytes | None]:
        """A file's core metadata bytes: the store's, or for a proxied file the upstream's.

        Kept with the project's pages (the bytes never change while the file
        exists); a proxied wheel's is fetched at most once.
        """
        source = view.sources.get(record.filename)
        if source is None:
            return self.metadata(record)
        assert self.proxy is not None  # proxied records exist only with a proxy
        key = (record.project, "upstream-metadata", record.filename)
        return self.cache.get_or_fill(key, lambda: self.proxy.downloads.metadata(record, source))

    def metadata(self, record: FileRecord) -> Deferred[bytes | None]:
        """The core metadata bytes of a hosted file (immutable while the file exists)."""
        key = (record.project, "metadata", record.filename)
        return self.cache.get_or_fill(
            key, lambda: self.store.get_metadata(record.project, record.filename)
        )

    async def release_metadata(self, view: ProjectView) -> dict[str, CoreMetadata]:
        """Parsed core metadata per version, from the first file of each release."""
        found: dict[str, CoreMetadata] = {}
        if view.sources:
            # A proxied project's metadata is upstream, one round trip per
            # release: not worth it to fill in a JSON document.
            return found
        for record in view.files:
            if record.version in found or record.metadata_sha256 is None:
                continue
            data = await self.metadata(record)
            if data is not None:  # parsed off the reactor: a description may be megabytes
                found[record.version] = await deferToThread(parse_core_metadata, data)
        return found

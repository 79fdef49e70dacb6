"""The proxy: upstream projects served as if hosted here, and what is cached of them.

:class:`ProxyCatalog` is what the catalog asks about a name the store does
not hold (``Catalog._load_project``; the store is always asked first, so a
hosted project shadows its upstream namesake entirely). It answers with a
:class:`ProjectView` of ``origin="proxy"`` records and the moment that view
stops being valid; the catalog caches the view and every page rendered from
it until then, so a cached proxied page costs what a hosted one does: no
upstream call, no store call, no disk.

Pages on disk. Each fetched page is kept as ``<data-dir>/upstream/pages/
<project>.json`` (:meth:`UpstreamPage.to_dict`: the parsed files with their
upstream URLs, the ETag, the upstream it came from and when it was fetched),
written to a temporary file and renamed, so that any process sharing the data
directory reads a whole page, last writer wins, and a restart keeps the
cache. The page is read on a view miss (one ``open`` of a known path); the
directory is listed once, at start-up, for ``/simple/``'s list of cached
projects. Files are in :mod:`ministry.web.proxy_files`.

Freshness. A page younger than ``--upstream-ttl`` is used as is; an older one
is revalidated with ``If-None-Match``, and the request waits for that at most
``STALE_WAIT`` seconds (not at all while the last upstream call failed). If
the upstream fails, times out, answers garbage or is still busy by then, the
stale page is served at once (stale-if-error, stale-while-revalidate), the
log says so, the revalidation goes on in the background (its success drops
the stale views), and otherwise the upstream is asked again after
``RETRY_AFTER``, whatever the TTL. A stale page lists only the files (and
``.metadata``) held here: the upstream could not be reached, so nothing else
can be promised; the full page returns with the upstream.
``--offline`` never asks: cached pages only, listing only cached files.
``--upstream-min-age`` is applied when the view is built, not when the page
is stored, and the view expires when the next hidden file comes of age.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from packaging.utils import InvalidName, canonicalize_name
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure

from ministry.catalog.cache import ALL
from ministry.catalog.views import ProjectView
from ministry.config import Settings
from ministry.core.models import FileRecord, ProjectRecord
from ministry.core.upstream_pages import UpstreamFile, UpstreamPage, cooled
from ministry.stores.blobs import FilesystemBlobStore
from ministry.upstream.client import UpstreamClient, UpstreamError, UpstreamUnavailable
from ministry.web.http.files import SEND_DIRECTLY, Delivery
from ministry.web.proxy_files import ProxyFiles

log = Logger()

#: After a failed revalidation, how long the stale page is served before the
#: upstream is asked again (a shorter TTL does not shorten it: a failing
#: upstream would otherwise be waited for on every request).
RETRY_AFTER = 60.0
#: How long a request with a stale page to fall back on waits for its revalidation.
STALE_WAIT = 2.0

_SUFFIX = ".json"


def make_proxy(settings: Settings, data_dir: str) -> ProxyCatalog | None:
    """The proxy the settings ask for, or None (no ``--upstream`` and not ``--offline``)."""
    if not settings.upstream and not settings.offline:
        return None
    client = UpstreamClient(
        settings.upstream,
        settings.upstream_timeout,
        deadline=settings.upstream_deadline,
        min_rate=settings.upstream_min_rate,
    )
    client.setName("upstream")
    proxy = ProxyCatalog(
        client,
        os.path.join(data_dir, "upstream"),
        ttl=settings.upstream_ttl,
        min_age=settings.upstream_min_age,
        offline=settings.offline,
        max_size=settings.cache_max_size,
        delivery=Delivery.from_settings(settings),
    )
    proxy.setName("proxy")
    return proxy


def _list_pages(directory: str) -> dict[str, float]:
    """Cached page names -> mtime (start-up only: never on a read path)."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return {}
    found = {}
    for entry in entries:
        if entry.name.endswith(_SUFFIX) and not entry.name.startswith("."):
            with contextlib.suppress(FileNotFoundError):
                found[entry.name.removesuffix(_SUFFIX)] = entry.stat().st_mtime
    return found


def _load_page(path: str) -> UpstreamPage:
    with open(path, "rb") as handle:
        return UpstreamPage.from_dict(json.load(handle))


def _save_page(path: str, page: UpstreamPage) -> None:
    """Write whole-or-nothing: a temporary file renamed over the old page."""
    directory, name = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(page.to_dict(), handle, separators=(",", ":"))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class ProxyCatalog(Service):
    """Upstream project views for the catalog, cached on disk (see the module docstring)."""

    def __init__(
        self,
        client: UpstreamClient,
        root: str,
        *,
        ttl: float,
        min_age: float,
        offline: bool,
        max_size: int | None,
        delivery: Delivery = SEND_DIRECTLY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.pages = os.path.join(root, "pages")
        self.ttl = ttl
        self.min_age = min_age
        self.offline = offline
        self.clock = clock
        self.files = ProxyFiles(
            client,
            FilesystemBlobStore(os.path.join(root, "files")),
            max_size=max_size,
            offline=offline,
            delivery=delivery,
            clock=clock,
        )
        self.files.on_sized = self._notify
        self._projects: dict[str, ProjectRecord] = {}
        self._listeners: list[Callable[[str], None]] = []
        #: Revalidations going on (at most one per project), and who waits for each.
        self._fetching: dict[str, list[Deferred[UpstreamPage | None]]] = {}
        #: Whether the last upstream call failed (then stale pages are served at once).
        self.failing = False
        #: Times a stale page was served because the upstream failed or was slow.
        self.stale_served = 0

    # -- service ----------------------------------------------------------------

    def startService(self) -> Deferred[None]:
        super().startService()
        # Serving does not wait for this: pages and files are found on disk
        # by path anyway; only /simple/'s list and the offline listing lag.
        return ensureDeferred(self._start()).addErrback(
            lambda failure: log.failure("Could not read the proxy cache", failure)
        )

    async def _start(self) -> None:
        names = await deferToThread(_list_pages, self.pages)
        self._projects = {
            name: ProjectRecord(name, name, 0, _moment(mtime)) for name, mtime in names.items()
        }
        await self.files.start()
        # Views built while the scans ran knew nothing of the cache.
        for name in [ALL, *self._projects]:
            self._notify(name)

    def stopService(self) -> None:
        super().stopService()
        self.files.stop()

    # -- what the catalog asks --------------------------------------------------

    def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(scope)`` when the pages of a scope (a project, or ALL) went stale."""
        self._listeners.append(callback)

    def cached_projects(self) -> list[ProjectRecord]:
        """The upstream projects whose page is cached, for ``/simple/``."""
        return list(self._projects.values())

    async def project(self, name: str) -> tuple[ProjectView | None, float]:
        """The view of the canonical ``name`` upstream (None: no upstream has it).

        Also returns until when (epoch seconds) the answer may be cached.
        Raises :class:`UpstreamUnavailable` (502) when the upstream fails and
        nothing is cached.
        """
        now = self.clock()
        try:
            canonicalize_name(name, validate=True)
        except InvalidName:
            return None, now + self.ttl
        cached = await self._read(name)
        if self.offline:
            return (None, now + self.ttl) if cached is None else self._view(cached, now + self.ttl)
        if cached is not None and now < cached.fetched + self.ttl:
            return self._view(cached, cached.fetched + self.ttl)
        if cached is not None:
            return await self._revalidate(name, cached, now)
        try:
            page = await self._fetch(name, None)
        except UpstreamError as exc:
            log.warn("Upstream failed for {project}: {error}", project=name, error=exc)
            raise UpstreamUnavailable(f"The upstream failed for {name}: {exc}") from None
        return self._fresh(page, now)

    async def refresh(self, name: str) -> UpstreamPage | None:
        """The canonical ``name``'s page fetched now (revalidated if cached), for the mirror.

        Unlike :meth:`project`, the TTL is not consulted: a mirror run wants
        today's versions, and an unchanged page costs one 304. The page is
        kept like any proxied one, and the catalog told its views are stale.
        Raises :class:`UpstreamError`; None when no upstream has the project.
        """
        page = await self._fetch(name, await self._read(name))
        self._notify(name)
        return page

    async def _revalidate(
        self, name: str, cached: UpstreamPage, now: float
    ) -> tuple[ProjectView | None, float]:
        """The revalidated page if it comes soon enough, else the stale one (see the docstring)."""
        waiters = self._fetching.get(name)
        if waiters is None:
            waiters = self._fetching[name] = []
            ensureDeferred(self._fetch(name, cached)).addBoth(self._fetched, name)
        waited: Deferred[UpstreamPage | None] = Deferred()
        waiters.append(waited)
        if self.failing:
            waited.cancel()
        else:
            waited.addTimeout(STALE_WAIT, self.client.reactor)
        try:
            return self._fresh(await waited, now)
        except UpstreamError as exc:
            reason = str(exc)
        except (CancelledError, defer.TimeoutError):
            reason = "no answer yet (asked again in the background)"
        self.stale_served += 1
        log.warn(
            "Upstream failed for {project}; serving its page from {age:.0f} s ago: {error}",
            project=name,
            age=now - cached.fetched,
            error=reason,
        )
        return self._view(cached, now + RETRY_AFTER, held_only=True)

    def _fetched(self, result: UpstreamPage | Failure | None, name: str) -> None:
        """Hand a revalidation's outcome to whoever still waits for it.

        If someone gave up and was served the stale page, a success drops
        the stale views, and a failure is logged here (nobody else saw it).
        """
        gave_up = False
        for waited in self._fetching.pop(name, []):
            if waited.called:
                gave_up = True
            elif isinstance(result, Failure):
                waited.errback(result)
            else:
                waited.callback(result)
        if not gave_up:
            return
        if not isinstance(result, Failure):
            self._notify(name)
        elif result.check(UpstreamError):
            log.warn("Upstream failed for {project}: {error}", project=name, error=result.value)
        else:
            log.failure("Revalidating {project} failed", result, project=name)

    async def _fetch(self, name: str, cached: UpstreamPage | None) -> UpstreamPage | None:
        """The page from the upstream, kept (or forgotten when no upstream has it)."""
        try:
            page = await self.client.fetch_page(name, cached)
        except UpstreamError:
            self.failing = True
            raise
        self.failing = False
        if page is None:
            if cached is not None or name in self._projects:
                await self._forget(name)
            return None
        await self._write(page)
        if name not in self._projects:
            self._projects[name] = ProjectRecord(name, name, 0, _moment(page.fetched))
            self._notify(ALL)
        return page

    def _fresh(self, page: UpstreamPage | None, now: float) -> tuple[ProjectView | None, float]:
        if page is None:
            return None, now + self.ttl
        return self._view(page, page.fetched + self.ttl)

    def stats(self) -> dict[str, Any]:
        """Counters for ``/health`` and ``/metrics``."""
        return {
            "upstreams": list(self.client.shown_urls),
            "failing": self.failing,
            "offline": self.offline,
            "cached_projects": len(self._projects),
            "pages_fetched": self.client.pages_fetched,
            "pages_not_modified": self.client.pages_not_modified,
            "upstream_errors": self.client.errors,
            "stale_pages_served": self.stale_served,
            "cache_bytes": self.files.cache_bytes,
            "cache_max_bytes": self.files.max_size,
            "cached_files": self.files.cached_files,
            "file_hits": self.files.hits,
            "file_misses": self.files.misses,
            "file_hit_rate": self.files.hit_rate,
            "evicted_files": self.files.evicted,
        }

    # -- helpers ----------------------------------------------------------------

    def _view(
        self, page: UpstreamPage, expires: float, *, held_only: bool = False
    ) -> tuple[ProjectView, float]:
        """The page as served now: cooled down, with cached sizes, and when that changes.

        ``held_only``: only what is cached here, as offline (the upstream failed).
        """
        shown, released = cooled(page.files, _moment(self.clock()), self.min_age)
        if released is not None:
            expires = min(expires, released.timestamp())
        records: list[FileRecord] = []
        sources: dict[str, UpstreamFile] = {}
        for item in shown:
            record = self.files.as_served(item.record, held_only=held_only or self.offline)
            if record is not None:
                records.append(record)
                sources[record.filename] = item
        project = ProjectRecord(page.project, page.project, 0, _moment(page.fetched))
        return ProjectView.of(project, records, sources), expires

    def _path(self, name: str) -> str:
        return os.path.join(self.pages, name + _SUFFIX)

    async def _read(self, name: str) -> UpstreamPage | None:
        try:
            return await deferToThread(_load_page, self._path(name))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warn("Ignoring damaged cached page of {project}: {error}", project=name, error=exc)
            return None

    async def _write(self, page: UpstreamPage) -> None:
        try:
            await deferToThread(_save_page, self._path(page.project), page)
        except OSError as exc:  # a cache: serving goes on without it
            log.error("Could not keep the page of {name}: {error}", name=page.project, error=exc)

    async def _forget(self, name: str) -> None:
        """The upstreams no longer have ``name``: drop its page (its files age out)."""
        await deferToThread(_remove, self._path(name))
        if self._projects.pop(name, None) is not None:
            self._notify(ALL)

    def _notify(self, scope: str) -> None:
        for callback in self._listeners:
            callback(scope)

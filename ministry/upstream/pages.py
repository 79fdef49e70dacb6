"""The proxy's pages: upstream projects as served here, with their freshness.

:class:`UpstreamPages` is what the catalog asks about a name the store does
not hold (``Catalog._load_project``; the store is always asked first, so a
hosted project shadows its upstream namesake entirely), and what the mirror
refreshes. It answers with an :class:`UpstreamView` of ``origin="proxy"``
records and the moment that view stops being valid; the catalog caches the
view and every page rendered from it until then, so a cached proxied page
costs what a hosted one does: no upstream call, no store call, no disk.
Pages are kept on disk by :mod:`ministry.upstream.saved_pages`, files by
:mod:`ministry.upstream.cache`; :mod:`ministry.upstream.views` makes the views.

Freshness. A page younger than ``--upstream-ttl`` is used as is, unless the
metadata store announced a change of the project since it was fetched, by
any process (``ministry-admin cache drop``, a cooldown exception:
:meth:`UpstreamPages.changed`); an older one is revalidated with
``If-None-Match``, and the request waits for that at most
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
is stored, and the view expires when the next hidden file comes of age. The
view lists the files it hides and until when (:attr:`UpstreamView.held_back`),
for the project page. Cooldown exceptions are read from the store as the view
is built (only under a cooldown); the store announces their changes, which
drops the view; if it cannot say, none applies until ``RETRY_AFTER``. A file
the upstream gives no upload time counts from when this index first saw it,
never served as its upload time (``ministry.core.upstream_pages`` says why).
Every moment comes from the injected clock (an ``IReactorTime``).

Names. Before anything else, the name goes through the
:class:`~ministry.core.name_policy.NamePolicy` (``--reserve``,
``--upstream-allow``, ``--upstream-deny``): a name it refuses is a
:class:`NotProxied` 404 saying why, for the web (through the catalog) and
the mirror (through :meth:`UpstreamPages.refresh`) alike; it is never asked
of the upstream, and a page saved before the policy said so is neither
served nor listed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from packaging.utils import InvalidName, canonicalize_name
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ministry.core.cooldown import CooldownException, Cooled, cool
from ministry.core.errors import NotFound, StoreUnavailable
from ministry.core.models import ProjectRecord
from ministry.core.name_policy import NamePolicy
from ministry.core.upstream_pages import UpstreamPage
from ministry.upstream.body import UpstreamError
from ministry.upstream.cache import FileCache
from ministry.upstream.client import UpstreamClient, UpstreamUnavailable
from ministry.upstream.downloads import Downloads
from ministry.upstream.saved_pages import SavedPages
from ministry.upstream.views import UpstreamView, moment, view_of

log = Logger()

#: After a failed revalidation, how long the stale page is served before the
#: upstream is asked again (a shorter TTL does not shorten it: a failing
#: upstream would otherwise be waited for on every request).
RETRY_AFTER = 60.0
#: How long a request with a stale page to fall back on waits for its revalidation.
STALE_WAIT = 2.0

#: The page to serve (None: no upstream has it), until when (clock seconds),
#: and whether only the files held here may be listed (offline, or stale).
_Found = tuple[UpstreamPage | None, float, bool]

#: What listeners are told when the list of cached projects changed.
PROJECT_LIST = None


class NotProxied(NotFound):
    """The name policy keeps this name from the upstream; the message says which rule."""


class UpstreamPages(Service):
    """Upstream project views, cached on disk (see the module docstring)."""

    def __init__(
        self,
        client: UpstreamClient,
        saved: SavedPages,
        cache: FileCache,
        downloads: Downloads,
        *,
        ttl: float,
        min_age: float,
        offline: bool,
        clock: IReactorTime,
        policy: NamePolicy,
        exceptions: Callable[[str], Deferred[list[CooldownException]]],
    ) -> None:
        """``exceptions`` is the metadata store's ``cooldown_exceptions``."""
        self.client = client
        self.saved = saved
        self.cache = cache
        self.downloads = downloads
        self.ttl = ttl
        self.min_age = min_age
        self.offline = offline
        self.clock = clock
        self.policy = policy
        self._exceptions = exceptions
        downloads.on_sized = self._notify
        self._projects: dict[str, ProjectRecord] = {}
        self._listeners: list[Callable[[str | None], None]] = []
        #: Revalidations going on (at most one per project), and who waits for each.
        self._fetching: dict[str, list[Deferred[UpstreamPage | None]]] = {}
        #: Projects the store announced as changed since their page was fetched:
        #: asked again at the next request, whatever the TTL (see :meth:`changed`).
        self._changed: set[str] = set()
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
        names = await self.saved.names()
        self._projects = {
            name: ProjectRecord(name, name, 0, moment(mtime)) for name, mtime in names.items()
        }
        await self.cache.start()
        # Views built while the scans ran knew nothing of the cache.
        for name in [PROJECT_LIST, *self._projects]:
            self._notify(name)

    def stopService(self) -> None:
        super().stopService()
        self.cache.stop()

    # -- what the catalog and the mirror ask ------------------------------------

    def subscribe(self, callback: Callable[[str | None], None]) -> None:
        """Call ``callback(project)`` when a project's views went stale.

        ``PROJECT_LIST`` (None) instead of a name: the list of cached projects changed.
        """
        self._listeners.append(callback)

    def changed(self, name: str) -> None:
        """The metadata store announced a change of ``name``: revalidate its page when next asked.

        Subscribed to the store, so it hears every process: a cache drop
        (``ministry-admin cache drop``) or a cooldown exception written by
        any of them. A hosted project's changes reach here too, harmlessly:
        its page, if any, is never served while it is hosted.
        """
        if name in self._projects:
            self._changed.add(name)

    def now(self) -> datetime:
        """The injected clock's time, for cooling files down (``--upstream-min-age``)."""
        return moment(self.clock.seconds())

    def cached_projects(self) -> list[ProjectRecord]:
        """The upstream projects whose page is cached and still allowed, for ``/simple/``."""
        allowed = self.policy.upstream_refusal
        return [record for name, record in self._projects.items() if allowed(name) is None]

    async def project(self, name: str) -> tuple[UpstreamView | None, float]:
        """The view of the canonical ``name`` upstream (None: no upstream has it).

        Also returns until when (clock seconds) the answer may be cached.
        Raises :class:`UpstreamUnavailable` (502) when the upstream fails and
        nothing is cached, :class:`NotProxied` (404) when the name policy refuses it.
        """
        now = self.clock.seconds()
        try:
            canonicalize_name(name, validate=True)
        except InvalidName:
            return None, now + self.ttl
        self._check_policy(name)
        page, expires, held_only = await self._page(name, now)
        if page is None:
            return None, expires
        return await self._view(page, expires, held_only=held_only)

    async def _page(self, name: str, now: float) -> _Found:
        """The page to serve now: see ``_Found``."""
        cached = await self.saved.read(name)
        if self.offline:
            return cached, now + self.ttl, True
        if cached is not None and now < cached.fetched + self.ttl and name not in self._changed:
            return cached, cached.fetched + self.ttl, False
        if cached is not None:
            return await self._revalidate(name, cached, now)
        try:
            page = await self._fetch(name, None)
        except UpstreamError as exc:
            log.warn("Upstream failed for {project}: {error}", project=name, error=exc)
            raise UpstreamUnavailable(f"The upstream failed for {name}: {exc}") from None
        return self._fresh(page, now)

    async def cooled(self, page: UpstreamPage) -> tuple[Cooled, bool]:
        """``page``'s files under the cooldown now, and whether its exceptions could be read."""
        if self.min_age <= 0:
            return cool(page.files, self.now(), 0), True
        try:
            exceptions = await self._exceptions(page.project)
        except StoreUnavailable as exc:
            log.warn(
                "Cooldown exceptions of {project} unknown, none applied: {error}",
                project=page.project,
                error=exc,
            )
            return cool(page.files, self.now(), self.min_age), False
        return cool(page.files, self.now(), self.min_age, exceptions), True

    async def refresh(self, name: str, kept: UpstreamPage | None) -> UpstreamPage | None:
        """The canonical ``name``'s page fetched now, revalidating ``kept``, for the mirror.

        ``kept`` is the saved page the mirror has just read itself (None:
        none), so it is not read twice. Unlike :meth:`project`, the TTL is
        not consulted: a mirror run wants today's versions, and an unchanged
        page costs one 304. The page is kept like any proxied one, and the
        catalog told its views are stale. Raises :class:`UpstreamError`, or
        :class:`NotProxied` when the name policy refuses it; None when no
        upstream has the project.
        """
        self._check_policy(name)
        page = await self._fetch(name, kept)
        self._notify(name)
        return page

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
            "cache_bytes": self.cache.cache_bytes,
            "cache_max_bytes": self.cache.max_size,
            "cached_files": self.cache.cached_files,
            "file_hits": self.cache.hits,
            "file_misses": self.cache.misses,
            "file_hit_rate": self.cache.hit_rate,
            "evicted_files": self.cache.evicted,
        }

    # -- freshness ----------------------------------------------------------------

    async def _revalidate(self, name: str, cached: UpstreamPage, now: float) -> _Found:
        """The revalidated page if it comes soon enough, else the stale one (see the docstring)."""
        waited: Deferred[UpstreamPage | None] = Deferred()
        waiters = self._fetching.get(name)
        if waiters is not None:
            waiters.append(waited)
        else:  # waiting before it starts: an upstream may answer at once (an in-memory one)
            self._fetching[name] = [waited]
            ensureDeferred(self._fetch(name, cached)).addBoth(self._fetched, name)
        if self.failing:
            waited.cancel()
        else:
            waited.addTimeout(STALE_WAIT, self.clock)
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
        return cached, now + RETRY_AFTER, True

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
        self._changed.discard(name)
        if page is None:
            if cached is not None or name in self._projects:
                await self._forget(name)
            return None
        await self.saved.write(page)
        if name not in self._projects:
            self._projects[name] = ProjectRecord(name, name, 0, moment(page.fetched))
            self._notify(PROJECT_LIST)
        return page

    def _fresh(self, page: UpstreamPage | None, now: float) -> _Found:
        if page is None:
            return None, now + self.ttl, False
        return page, page.fetched + self.ttl, False

    # -- helpers ----------------------------------------------------------------

    def _check_policy(self, name: str) -> None:
        refusal = self.policy.upstream_refusal(name)
        if refusal is not None:
            raise NotProxied(refusal)

    async def _view(
        self, page: UpstreamPage, expires: float, *, held_only: bool
    ) -> tuple[UpstreamView, float]:
        """The page as served now: cooled down, with cached sizes, and when that changes.

        ``held_only``: only what is cached here, as offline (the upstream failed).
        """
        cooled, known = await self.cooled(page)
        if cooled.changes_at is not None:
            expires = min(expires, cooled.changes_at.timestamp())
        if not known:
            expires = min(expires, self.clock.seconds() + RETRY_AFTER)
        view = view_of(
            page, cooled, lambda record: self.cache.as_served(record, held_only=held_only)
        )
        return view, expires

    async def _forget(self, name: str) -> None:
        """The upstreams no longer have ``name``: drop its page (its files age out)."""
        await self.saved.remove(name)
        if self._projects.pop(name, None) is not None:
            self._notify(PROJECT_LIST)

    def _notify(self, project: str | None) -> None:
        for callback in self._listeners:
            callback(project)

"""One run's reading of the upstream's serials: which kept pages need no revalidation.

Revalidating every project of the selection costs a round trip each, even
when nothing changed: 500 projects, 500 304s in a row per run. A PyPI-like
upstream (PyPI, a ministry) says in one answer what changed: its PEP 691
``/simple/`` index gives each project's serial, and each page it served
came with the serial it was at (``X-PyPI-Last-Serial``, kept with the page:
:attr:`UpstreamPage.serial`). A kept page whose serial is the index's is
the upstream's current page, so the run uses it as it is; any other page is
revalidated as before. Nothing is verified less: the kept page's files are
checked to be held (and fetched if not) like those of a fetched page.

When the index can tell nothing, every page is revalidated, as without it:
an upstream that gives no serials (a company mirror, an HTML-only index, a
failing index: said once in the log), a page kept without a serial, a serial
that moved, or a project the index does not list. Only a page from the
first upstream is taken as current: one from a later upstream was taken
because the earlier ones had no such project then, and they may have it now.

The index is read at most once a run, when the first kept page with a
serial is met, and only for runs of at least :data:`INDEX_MIN_PROJECTS`
projects: below that a few 304s cost less than PyPI's index of some
700,000 projects. Of it only the projects this run wants or the proxy
holds a page of are kept, so its memory follows the selection.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from twisted.internet.defer import DeferredLock
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from ministry.core.upstream_index import parse_serials
from ministry.core.upstream_links import PageError
from ministry.core.upstream_pages import UpstreamPage
from ministry.upstream.body import UpstreamError
from ministry.upstream.pages import UpstreamPages

log = Logger()

#: Runs of fewer projects revalidate each page instead of reading the index.
INDEX_MIN_PROJECTS = 20

_UNREAD: Any = object()


class Serials:
    """The first upstream's serials for one run, read on first need (see the module docstring)."""

    def __init__(self, proxy: UpstreamPages, min_projects: int = INDEX_MIN_PROJECTS) -> None:
        self.proxy = proxy
        self.min_projects = min_projects
        #: Kept pages this run used as they are, their serial unchanged.
        self.current = 0
        self._serials: dict[str, int] | None = _UNREAD
        self._lock = DeferredLock()

    async def kept(self, project: str, projects: Set[str]) -> tuple[UpstreamPage | None, bool]:
        """``project``'s kept page (None: none), and whether the index says it is current.

        ``projects``: the run's projects so far. A name the policy refuses
        is left to the revalidation, which says why.
        """
        if self.proxy.policy.upstream_refusal(project) is not None:
            return None, False
        kept = await self.proxy.saved.read(project)
        client = self.proxy.client
        if (
            kept is None
            or kept.serial is None
            or kept.upstream != next(iter(client.urls), None)
            or len(projects) < self.min_projects
        ):
            return kept, False
        serials = await self._read(projects)
        if serials is None or serials.get(project) != kept.serial:
            return kept, False
        self.current += 1
        return kept, True

    async def _read(self, projects: Set[str]) -> dict[str, int] | None:
        """The index's serials (None: it gives none), fetched by the first caller only."""
        await self._lock.acquire()
        try:
            if self._serials is _UNREAD:
                self._serials = await self._fetch(projects)
            return self._serials
        finally:
            self._lock.release()

    async def _fetch(self, projects: Set[str]) -> dict[str, int] | None:
        client = self.proxy.client
        shown = client.shown_urls[0]
        wanted = set(projects) | {record.name for record in self.proxy.cached_projects()}
        try:
            body, content_type = await client.fetch_index(client.urls[0])
            serials = await deferToThread(parse_serials, body, content_type, wanted.__contains__)
        except (UpstreamError, PageError) as exc:
            log.info(
                "Mirror: no serials from {upstream} ({error}); each kept page is revalidated",
                upstream=shown,
                error=exc,
            )
            return None
        log.info(
            "Mirror: the index of {upstream} gives the serials of {count} of our projects",
            upstream=shown,
            count=len(serials),
        )
        return serials

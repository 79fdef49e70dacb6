"""One mirror run's work list, shared by the run's workers.

A run expands needs (a requirement on some targets) into files to fetch and
the needs their releases add. Expanding one is mostly waiting: a page
revalidated, files downloaded and committed. Done one after the other, an
unchanged selection of 500 projects costs 500 round trips in a row, so the
service runs several workers over one :class:`Work` (:data:`WORKERS` in
:mod:`ministry.mirror.service`), and the files of all of them share one
bound (:attr:`Work.files`), so the upstream sees a fixed number of
connections however many projects are in flight.

The bookkeeping that a single loop did implicitly is explicit here: a need
is *open* from the moment it is queued until its expansion has queued what
it found, and a project is done when it has no open need; a worker that
finds the queue empty while others are still expanding waits for them (they
may add more), and the run ends when nothing is queued and nothing is open.
Each project's page is fetched once per run, even when two of its needs
are expanded at the same moment.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred, DeferredLock, DeferredSemaphore

from ministry.core.mirror_targets import Need
from ministry.core.upstream_pages import UpstreamPage


class Work:
    """The needs of one run: queued, open, done; the pages read; the shared file bound."""

    def __init__(self, roots: Iterable[Need], files_at_once: int) -> None:
        self.queue: deque[Need] = deque(roots)
        self.seen: set[Any] = {need.key for need in self.queue}
        self.projects: set[str] = {need.project for need in self.queue}
        self.done: set[str] = set()
        #: Downloads in flight over the whole run.
        self.files = DeferredSemaphore(files_at_once)
        self._open: Counter[str] = Counter(need.project for need in self.queue)
        self._expanding = 0
        self._waiting: list[Deferred[None]] = []
        self._pages: dict[str, UpstreamPage | None] = {}
        self._page_locks: dict[str, DeferredLock] = {}

    async def next(self, halted: Callable[[], bool]) -> Need | None:
        """The next need to expand; None when the run is over or ``halted()``."""
        while not halted():
            if self.queue:
                self._expanding += 1
                return self.queue.popleft()
            if not self._expanding:
                return None
            woken: Deferred[None] = Deferred()
            self._waiting.append(woken)
            await woken
        return None

    def expanded(self, need: Need, found: Iterable[Need]) -> None:
        """``need`` is expanded and ``found`` what it adds (already seen ones are dropped)."""
        self._expanding -= 1
        for new in found:
            if new.key in self.seen:  # queued or done already (cycles end here)
                continue
            self.seen.add(new.key)
            self.queue.append(new)
            self.projects.add(new.project)
            self.done.discard(new.project)
            self._open[new.project] += 1
        self._open[need.project] -= 1
        if not self._open[need.project]:
            self.done.add(need.project)
        waiting, self._waiting = self._waiting, []
        for woken in waiting:
            woken.callback(None)

    async def page(
        self, project: str, fetch: Callable[[str], Awaitable[UpstreamPage | None]]
    ) -> UpstreamPage | None:
        """``project``'s page for this run: ``fetch(project)`` the first time only."""
        lock = self._page_locks.setdefault(project, DeferredLock())
        await lock.acquire()
        try:
            if project not in self._pages:
                self._pages[project] = await fetch(project)
            return self._pages[project]
        finally:
            lock.release()

"""What the index holds, for the home page: counts and the latest uploads.

The store can list projects but not count files, so the file count is a
tally kept per project with the project serial it was read at: after a
change, only the projects whose serial moved are read again. The first
tally has to read every project once (about 25 s at 100,000 projects on
SQLite); so that no page waits for that, a tally of more than
``INLINE_LIMIT`` projects runs in the background and the summary says the
files are still being counted until it is done. (A ``count_files`` in the
store interface would make the first tally instant.)

Recent files come from the projects changed last: each change bumps the
changed project's serial, so the projects holding the newest files are among
the ``RECENT`` highest serials (a registration also bumps a serial without
adding a file, which at worst drops an older file off the list).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, FirstError, ensureDeferred, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

from ministry.catalog.cache import ALL
from ministry.catalog.views import Catalog
from ministry.core.models import FileRecord, ProjectRecord

log = Logger()

T = TypeVar("T")

RECENT = 10

#: Stale projects counted while a summary waits; more are counted in the background.
INLINE_LIMIT = 1000

#: Store reads issued at once while counting: enough to keep the store busy,
#: few enough not to queue a hundred thousand calls at once.
_BATCH = 200


@dataclass(frozen=True)
class Summary:
    """The home page's facts, as of one index serial."""

    serial: int
    projects: int
    #: None while a background count is under way.
    files: int | None
    #: The newest files with their project, newest first.
    recent: tuple[tuple[ProjectRecord, FileRecord], ...]


async def _gather(waiting: Iterable[Deferred[T]]) -> list[T]:
    """Results of Deferreds run concurrently; the first failure is raised as itself."""
    try:
        return await gatherResults(list(waiting), consumeErrors=True)
    except FirstError as error:
        error.subFailure.raiseException()
        raise  # pragma: no cover - raiseException always raises


class Holdings:
    """Keeps the per-project file tally and answers :meth:`summary`."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        #: canonical name -> (project serial when counted, number of files)
        self._tally: dict[str, tuple[int, int]] = {}
        self._background: Deferred[None] | None = None
        #: Bumped when a background count ends. Part of the cache keys of the
        #: summary and of the home page, so that what was cached while
        #: counting is not served once the count is done.
        self.epoch = 0

    def summary(self) -> Deferred[Summary]:
        """The summary, computed at most once per change to the index (and per epoch)."""
        return self.catalog.cache.get_or_fill((ALL, "holdings", self.epoch), self._sum)

    async def _sum(self) -> Summary:
        index = await self.catalog.index()
        stale = [
            project
            for project in index.projects
            if self._tally.get(project.name, (None, 0))[0] != project.serial
        ]
        if self._background is None and len(stale) > INLINE_LIMIT:
            self._background = ensureDeferred(self._count(stale))
            self._background.addBoth(self._counted)
        files = None
        if self._background is None:
            await self._count(stale)
            files = sum(self._tally.get(project.name, (0, 0))[1] for project in index.projects)
        return Summary(index.serial, len(index.projects), files, await self._recent(index.projects))

    async def _count(self, projects: list[ProjectRecord]) -> None:
        """Count the files of ``projects``, straight from the store.

        Not through the catalog: its cached views are for serving, and a first
        tally would push every served page out of the cache. A file added
        after the index view was read is counted under the older serial, so
        the project is simply counted again next time.
        """
        for start in range(0, len(projects), _BATCH):
            batch = projects[start : start + _BATCH]
            found = await _gather(self.catalog.store.list_files(project.name) for project in batch)
            for project, files in zip(batch, found, strict=True):
                self._tally[project.name] = (project.serial, len(files))

    def _counted(self, result: Any) -> None:
        self._background = None
        self.epoch += 1
        if isinstance(result, Failure):
            log.failure("Counting the files of every project failed; will retry", result)

    async def _recent(
        self, projects: tuple[ProjectRecord, ...]
    ) -> tuple[tuple[ProjectRecord, FileRecord], ...]:
        latest = heapq.nlargest(RECENT, projects, key=lambda project: project.serial)
        views = await _gather(self.catalog.project(project.name) for project in latest)
        candidates = [
            (view.project, record) for view in views if view is not None for record in view.files
        ]
        return tuple(heapq.nlargest(RECENT, candidates, key=lambda pair: pair[1].upload_time))

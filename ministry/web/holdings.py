"""What the index holds, for the home page: counts and the latest uploads.

The store can list projects but not count files, and reading every project's
files on each change would cost one store call per project. So the file
count is a tally kept per project with the project serial it was read at:
after a change, only projects whose serial moved are read again (through
the catalog, whose views the simple pages share). The first tally reads
every project once.

Recent files come from the projects changed last: each change bumps the
changed project's serial, so the projects holding the newest files are among
the ``RECENT`` highest serials (a registration also bumps a serial without
adding a file, which at worst drops an older file off the list).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from twisted.internet.defer import Deferred, FirstError, gatherResults, succeed

from ministry.core.models import FileRecord, ProjectRecord
from ministry.web.cache import ALL
from ministry.web.catalog import Catalog, ProjectView

RECENT = 10

#: Project views read at once while tallying, so a first tally of a large
#: index neither waits on one round trip per project nor floods the store.
_BATCH = 200


@dataclass(frozen=True)
class Summary:
    """The home page's facts, as of one index serial."""

    serial: int
    projects: int
    files: int
    #: The newest files with their project, newest first.
    recent: tuple[tuple[ProjectRecord, FileRecord], ...]


class Holdings:
    """Keeps the per-project file tally and answers :meth:`summary`."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        #: canonical name -> (project serial when read, number of files)
        self._tally: dict[str, tuple[int, int]] = {}

    def summary(self) -> Deferred[Summary]:
        """The summary, computed at most once per change to the index."""
        key = (ALL, "holdings")
        found = self.catalog.cache.get(key)
        return succeed(found) if found is not None else self.catalog.cache.fill(key, self._sum)

    async def _sum(self) -> Summary:
        index = await self.catalog.index()
        stale = [
            project.name
            for project in index.projects
            if self._tally.get(project.name, (None, 0))[0] != project.serial
        ]
        for start in range(0, len(stale), _BATCH):
            for view in await self._views(stale[start : start + _BATCH]):
                if view is not None:
                    # The view's own serial: if it is newer than the index
                    # view, the next summary simply reads the project again.
                    self._tally[view.project.name] = (view.project.serial, len(view.files))
        self._tally = {
            project.name: self._tally.get(project.name, (-1, 0)) for project in index.projects
        }
        files = sum(count for _serial, count in self._tally.values())
        return Summary(index.serial, len(index.projects), files, await self._recent(index.projects))

    async def _recent(
        self, projects: tuple[ProjectRecord, ...]
    ) -> tuple[tuple[ProjectRecord, FileRecord], ...]:
        latest = heapq.nlargest(RECENT, projects, key=lambda project: project.serial)
        views = await self._views([project.name for project in latest])
        candidates = [
            (view.project, record) for view in views if view is not None for record in view.files
        ]
        newest = heapq.nlargest(RECENT, candidates, key=lambda pair: pair[1].upload_time)
        return tuple(newest)

    async def _views(self, names: list[str]) -> list[ProjectView | None]:
        """The views of several projects, read concurrently; the first failure is raised."""
        try:
            return await gatherResults(
                [self.catalog.project(name) for name in names], consumeErrors=True
            )
        except FirstError as error:
            error.subFailure.raiseException()
            raise  # pragma: no cover - raiseException always raises

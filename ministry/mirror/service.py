"""The mirror's timer service, one run over the selection, and a run in the foreground.

See the package docstring (:mod:`ministry.mirror`) for what a run does and why.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from typing import Any, TextIO

from twisted.application.internet import TimerService
from twisted.internet.defer import DeferredList, FirstError, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ministry.core.errors import MinistryError
from ministry.core.mirror_config import MirrorConfig
from ministry.core.mirror_plan import (
    Release,
    bad_requirements,
    dependencies,
    metadata_source,
    select,
)
from ministry.core.mirror_targets import Need
from ministry.core.models import QUARANTINED, FileRecord
from ministry.core.upstream_pages import UpstreamFile, UpstreamPage
from ministry.interfaces import ILease
from ministry.mirror.builds import BuildRequirements
from ministry.mirror.serials import INDEX_MIN_PROJECTS, Serials
from ministry.mirror.status import MirrorStatus, progress_bar
from ministry.mirror.work import Work
from ministry.stores.lease import holder_id
from ministry.upstream.body import UpstreamError
from ministry.upstream.pages import NotProxied, UpstreamPages

log = Logger()

#: Files downloaded at once, over all the projects in flight.
PARALLEL = 8
#: Needs expanded at once (pages fetched or revalidated concurrently): see
#: :mod:`ministry.mirror.work`.
WORKERS = 8
#: The lease's lifetime; renewed every third of it while a run goes on.
LEASE_TTL = 60.0
LEASE_NAME = "mirror"
#: ``ministry-admin mirror run`` redraws its bar at most this often (seconds).
BAR_INTERVAL = 0.1
#: How often ``ministry-admin mirror run`` writes a progress line when not on a terminal.
LOG_LINE_INTERVAL = 10.0


class MirrorService(TimerService):
    """Runs the mirror at start-up and every ``config.every`` (see the module docstring)."""

    def __init__(
        self,
        config: MirrorConfig,
        proxy: UpstreamPages,
        store: Any,
        *,
        clock: IReactorTime,
        parallel: int = PARALLEL,
        workers: int = WORKERS,
        index_min_projects: int = INDEX_MIN_PROJECTS,
    ) -> None:
        super().__init__(config.every, self._tick)
        self.config = config
        self.proxy = proxy
        self.store = store
        self.parallel = parallel
        self.workers = workers
        #: TimerService runs its loop on this clock; every moment recorded comes from it too.
        self.clock = clock
        self.status = MirrorStatus(config.every, next_run=self._next_run)
        #: The build requirements the current run added (a new one each run).
        self.builds = BuildRequirements(proxy.cache, self.status)
        #: The upstream's serials as the current run read them (a new one each run).
        self.serials = Serials(proxy, index_min_projects)
        self.lease: ILease = store.lease(LEASE_NAME)
        self.holder = holder_id(LEASE_NAME)
        #: Called after every file and project, for ``ministry-admin mirror run``'s bar.
        self.on_progress: Callable[[MirrorStatus], None] = lambda status: None
        self._stopping = False
        self._lease_lost = False
        self._broken = False

    def startService(self) -> None:
        self._stopping = False
        super().startService()

    def stopService(self) -> Any:
        # The run in progress ends after the files in flight; the timer waits for it.
        self._stopping = True
        return super().stopService()

    def _next_run(self) -> float | None:
        loop = getattr(self, "_loop", None)
        if loop is None or not loop.running or loop.call is None:
            return None
        return loop.call.getTime()

    def _tick(self) -> Any:
        return ensureDeferred(self.run_once())

    # -- one run ------------------------------------------------------------------------

    async def run_once(self) -> bool:
        """One pass over the selection; False when skipped (running here or elsewhere).

        Never raises: whatever goes wrong is logged and recorded in the status.
        """
        status = self.status
        if status.running:
            status.skipped_runs += 1
            log.info("Mirror run skipped: one is already running")
            return False
        status.running = True
        self._lease_lost = self._broken = False
        renewal: LoopingCall | None = None
        leased = False
        try:
            leased = await self._take_lease()
            if not leased:
                status.skipped_runs += 1
                log.info("Mirror run skipped: another process holds the lease")
                return False
            renewal = self._renew_lease()
            await self._run()
            return True
        except Exception as exc:
            status.failed_runs += 1
            status.error("(run)", f"the run stopped: {exc!r}")
            log.failure("Mirror run failed")
            return True
        finally:
            if renewal is not None and renewal.running:
                renewal.stop()
            if leased:
                await self._release_lease()
            status.running = False
            status.current = None
            self.on_progress(status)

    async def _run(self) -> None:
        status = self.status
        status.started, status.finished = self.clock.seconds(), None
        status.runs += 1
        status.projects_done = status.projects_total = 0
        status.files_fetched = status.bytes_fetched = status.files_present = 0
        status.errors, status.skipped = [], []
        self.builds = BuildRequirements(self.proxy.cache, status)
        self.serials = Serials(self.proxy, self.serials.min_projects)
        log.info(
            "Mirror run started: {count} requirements for {targets}",
            count=len(self.config.requirements),
            targets=", ".join(str(target) for target in self.config.targets),
        )
        work = Work(self.config.roots(), self.parallel)
        status.projects_total = len(work.projects)
        workers = [ensureDeferred(self._worker(work)) for _ in range(self.workers)]
        for success, result in await DeferredList(workers, consumeErrors=True):
            if not success:  # a bug: the first one stops the run, as run_once records
                result.raiseException()
        status.finished = self.clock.seconds()
        if work.queue:
            status.error("(run)", "stopped before the end")
        elif not status.errors:
            status.last_success = status.finished
        log.info(
            "Mirror run finished in {seconds:.2f} s: {projects} projects, {fetched} files "
            "fetched ({bytes} bytes), {present} already here, {errors} errors, "
            "{current} pages current by their serial",
            seconds=status.finished - status.started,
            projects=status.projects_done,
            fetched=status.files_fetched,
            bytes=status.bytes_fetched,
            present=status.files_present,
            errors=len(status.errors),
            current=self.serials.current,
        )

    async def _worker(self, work: Work) -> None:
        """Expand needs until the run is over; a bug in one halts the others."""
        status = self.status
        try:
            while (need := await work.next(self._halted)) is not None:
                status.current = need.project
                found: list[Need] = []
                try:
                    found = await self._mirror_need(need, work)
                finally:
                    work.expanded(need, found)
                status.projects_total, status.projects_done = len(work.projects), len(work.done)
                self.on_progress(status)
        except BaseException:
            self._broken = True
            raise

    def _halted(self) -> bool:
        return self._stopping or self._lease_lost or self._broken

    async def _mirror_need(self, need: Need, work: Work) -> list[Need]:
        """Fetch what ``need`` selects; return the needs its releases add."""
        project = need.project
        page = await work.page(project, lambda name: self._page(name, work.projects))
        if page is None:
            return []
        shown = (await self.proxy.cooled(page))[0].shown
        sources = {item.record.filename: item for item in shown}
        releases = select((item.record for item in shown), need, self.config)
        if not releases:
            self.status.error(project, f"no file matches {need.requirement} for the targets")
            return []
        records = [record for release in releases for record in release.files]
        try:
            # Pinned first, together: an eviction between a fetch and its pin could take it.
            await self.proxy.cache.pin(*records)
        except FirstError as exc:
            self.status.error(project, f"could not pin its files: {exc.subFailure.value}")
            return []
        results = await DeferredList(
            [
                work.files.run(lambda r=record: ensureDeferred(self._fetch(r, sources[r.filename])))
                for record in records
            ],
            consumeErrors=True,
        )
        for success, result in results:
            if not success:
                self.status.error(project, result.getErrorMessage())
        found: list[Need] = []
        if self.config.dependencies:
            for release in releases:
                found += await self._dependencies(need, release, sources)
        if self.config.build_requirements:
            for release in releases:
                found += await self.builds.needs(need, release)
        log.info(
            "Mirror: {project} ({requirement}): versions {versions}, {fetched} files fetched, "
            "{dependencies} dependencies",
            project=project,
            requirement=str(need.requirement),
            versions=", ".join(str(release.version) for release in releases),
            fetched=sum(1 for success, fetched in results if success and fetched),
            dependencies=len(found),
        )
        return found

    async def _page(self, project: str, projects: Set[str]) -> UpstreamPage | None:
        """The page to mirror: kept if its serial says it is current, else revalidated."""
        if await self.store.get_project(project) is not None:
            log.info(
                "Mirror: {project} is hosted here; the upstream's is not mirrored", project=project
            )
            return None
        try:
            kept, current = await self.serials.kept(project, projects)
            page = kept if current else await self.proxy.refresh(project, kept)
        except NotProxied as exc:
            self.status.skip(project, exc.message)
            return None
        except UpstreamError as exc:
            self.status.error(project, str(exc))
            return None
        if page is None:
            self.status.error(project, "no upstream has this project")
        elif page.status == QUARANTINED:
            reason = f" ({page.status_reason})" if page.status_reason else ""
            self.status.skip(project, f"{project} is quarantined upstream{reason}")
            return None
        return page

    async def _fetch(self, record: FileRecord, source: UpstreamFile) -> bool:
        """Make sure the (pinned) file is held; True if this call fetched it (status counts all)."""
        size = await self.proxy.downloads.fetch(record, source)
        status = self.status
        if size:
            status.files_fetched += 1
            status.files_fetched_total += 1
            status.bytes_fetched += size
            status.bytes_fetched_total += size
        else:
            status.files_present += 1
        self.on_progress(status)
        return bool(size)

    async def _dependencies(
        self, need: Need, release: Release, sources: dict[str, UpstreamFile]
    ) -> list[Need]:
        """The needs from one release's metadata: its PEP 658 file, else the cached wheel's."""
        record = metadata_source(release)
        if record is None:
            log.info(
                "Mirror: {project} {version} has no wheel; its dependencies are not followed",
                project=need.project,
                version=str(release.version),
            )
            return []
        try:
            if record.metadata_sha256:
                metadata = await self.proxy.downloads.metadata(record, sources[record.filename])
            else:  # fetched by this run: held by the cache, unless it failed
                metadata = await self.proxy.cache.wheel_metadata(record)
        except (MinistryError, OSError) as exc:
            message = exc.message if isinstance(exc, MinistryError) else str(exc)
            self.status.error(need.project, f"metadata of {record.filename}: {message}")
            return []
        for line in bad_requirements(metadata):
            log.warn(
                "Mirror: {file}: ignoring Requires-Dist {line!r}", file=record.filename, line=line
            )
        return dependencies(metadata, need)

    # -- the lease ----------------------------------------------------------------------

    async def _take_lease(self) -> bool:
        return await self.lease.acquire(self.holder, LEASE_TTL)

    def _renew_lease(self) -> LoopingCall:
        def renew() -> Any:
            def checked(held: bool) -> None:
                if not held:
                    self.status.error("(run)", "lost the mirror lease; stopping the run")
                    self._lease_lost = True

            def failed(failure: Any) -> None:
                log.warn("Could not renew the mirror lease: {error}", error=failure.value)

            return self.lease.renew(self.holder, LEASE_TTL).addCallbacks(checked, failed)

        renewal = LoopingCall(renew)
        renewal.clock = self.clock
        renewal.start(LEASE_TTL / 3, now=False)
        return renewal

    async def _release_lease(self) -> None:
        try:
            await self.lease.release(self.holder)
        except Exception as exc:  # it expires anyway
            log.warn("Could not release the mirror lease: {error}", error=exc)


# -- ``ministry-admin mirror run`` --------------------------------------------------------


async def run_in_foreground(
    proxy: UpstreamPages | None, config: MirrorConfig, store: Any, bar: TextIO
) -> MirrorStatus:
    """One mirror pass outside the daemon, drawing a progress bar on ``bar``.

    ``proxy`` comes from ``ministry.backends.build_upstream``: the same upstream
    side as the daemon's, on the same data directory, so what it fetches is
    served by the daemon at once.
    """
    if proxy is None or not proxy.client.urls:
        raise ValueError("the mirror needs an upstream: set upstream (--upstream URL)")
    mirror = MirrorService(config, proxy, store, clock=proxy.clock)
    # On a terminal, one line redrawn in place; in a log file (cron, CI), a
    # plain line now and then: a carriage return there makes one endless line.
    terminal = bar.isatty()
    interval, ending = (BAR_INTERVAL, "") if terminal else (LOG_LINE_INTERVAL, "\n")
    drawn = [float("-inf")]

    def draw(status: MirrorStatus) -> None:
        # A terminal line per file would cost more than a small file's download.
        now = proxy.clock.seconds()
        if status.running and now - drawn[0] < interval:
            return
        drawn[0] = now
        bar.write(("\r" if terminal else "") + progress_bar(status) + ending)
        bar.flush()

    mirror.on_progress = draw
    proxy.client.startService()
    await proxy.startService()
    try:
        await mirror.run_once()
    finally:
        proxy.stopService()
        await proxy.client.stopService()
        if terminal:
            bar.write("\n")
    return mirror.status

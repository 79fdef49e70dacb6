"""The mirror's timer service, one run over the selection, and a run in the foreground.

See the package docstring (:mod:`ministry.mirror`) for what a run does and why.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

from twisted.application.internet import TimerService
from twisted.internet.defer import DeferredList, DeferredSemaphore, ensureDeferred
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
from ministry.mirror.status import MirrorStatus, progress_bar
from ministry.stores.lease import holder_id
from ministry.upstream.body import UpstreamError
from ministry.upstream.pages import NotProxied, UpstreamPages

log = Logger()

#: Files downloaded at once.
PARALLEL = 4
#: The lease's lifetime; renewed every third of it while a run goes on.
LEASE_TTL = 60.0
LEASE_NAME = "mirror"


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
    ) -> None:
        super().__init__(config.every, self._tick)
        self.config = config
        self.proxy = proxy
        self.store = store
        self.parallel = parallel
        #: TimerService runs its loop on this clock; every moment recorded comes from it too.
        self.clock = clock
        self.status = MirrorStatus(config.every, next_run=self._next_run)
        self.lease: ILease = store.lease(LEASE_NAME)
        self.holder = holder_id(LEASE_NAME)
        #: Called after every file and project, for ``ministry-admin mirror run``'s bar.
        self.on_progress: Callable[[MirrorStatus], None] = lambda status: None
        self._stopping = False
        self._lease_lost = False

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
        self._lease_lost = False
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
        log.info(
            "Mirror run started: {count} requirements for {targets}",
            count=len(self.config.requirements),
            targets=", ".join(str(target) for target in self.config.targets),
        )
        queue: deque[Need] = deque(self.config.roots())
        seen: set[Any] = {need.key for need in queue}
        pages: dict[str, UpstreamPage | None] = {}
        projects: set[str] = {need.project for need in queue}
        done: set[str] = set()
        status.projects_total = len(projects)
        while queue and not (self._stopping or self._lease_lost):
            need = queue.popleft()
            status.current = need.project
            for found in await self._mirror_need(need, pages):
                if found.key in seen:  # queued or done already (cycles end here)
                    continue
                seen.add(found.key)
                queue.append(found)
                projects.add(found.project)
                done.discard(found.project)
            if not any(waiting.project == need.project for waiting in queue):
                done.add(need.project)
            status.projects_total, status.projects_done = len(projects), len(done)
            self.on_progress(status)
        status.finished = self.clock.seconds()
        if queue:
            status.error("(run)", "stopped before the end")
        elif not status.errors:
            status.last_success = status.finished
        log.info(
            "Mirror run finished in {seconds:.1f} s: {projects} projects, {fetched} files "
            "fetched ({bytes} bytes), {present} already here, {errors} errors",
            seconds=status.finished - status.started,
            projects=status.projects_done,
            fetched=status.files_fetched,
            bytes=status.bytes_fetched,
            present=status.files_present,
            errors=len(status.errors),
        )

    async def _mirror_need(self, need: Need, pages: dict[str, UpstreamPage | None]) -> list[Need]:
        """Fetch what ``need`` selects; return the needs its releases add."""
        project = need.project
        if project not in pages:
            pages[project] = await self._page(project)
        page = pages[project]
        if page is None:
            return []
        shown = (await self.proxy.cooled(page))[0].shown
        sources = {item.record.filename: item for item in shown}
        releases = select((item.record for item in shown), need, self.config)
        if not releases:
            self.status.error(project, f"no file matches {need.requirement} for the targets")
            return []
        fetched_before = self.status.files_fetched
        semaphore = DeferredSemaphore(self.parallel)
        results = await DeferredList(
            [
                semaphore.run(lambda r=record: ensureDeferred(self._fetch(r, sources[r.filename])))
                for release in releases
                for record in release.files
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
        log.info(
            "Mirror: {project} ({requirement}): versions {versions}, {fetched} files fetched, "
            "{dependencies} dependencies",
            project=project,
            requirement=str(need.requirement),
            versions=", ".join(str(release.version) for release in releases),
            fetched=self.status.files_fetched - fetched_before,
            dependencies=len(found),
        )
        return found

    async def _page(self, project: str) -> UpstreamPage | None:
        if await self.store.get_project(project) is not None:
            log.info(
                "Mirror: {project} is hosted here; the upstream's is not mirrored", project=project
            )
            return None
        try:
            page = await self.proxy.refresh(project)
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

    async def _fetch(self, record: FileRecord, source: UpstreamFile) -> None:
        # Pinned first: an eviction between the fetch and a pin could take it.
        await self.proxy.cache.pin(record)
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

    ``proxy`` comes from ``ministry.tap.build_upstream``: the same upstream
    side as the daemon's, on the same data directory, so what it fetches is
    served by the daemon at once.
    """
    if proxy is None or not proxy.client.urls:
        raise ValueError("the mirror needs an upstream: set upstream (--upstream URL)")
    mirror = MirrorService(config, proxy, store, clock=proxy.clock)

    def draw(status: MirrorStatus) -> None:
        bar.write("\r" + progress_bar(status))
        bar.flush()

    mirror.on_progress = draw
    proxy.client.startService()
    await proxy.startService()
    try:
        await mirror.run_once()
    finally:
        proxy.stopService()
        await proxy.client.stopService()
        bar.write("\n")
    return mirror.status

"""The scheduled mirror: the ``[mirror]`` selection fetched ahead of time, on a timer.

A :class:`MirrorService` is a ``TimerService``: it runs at start-up
(``now=True``) and then every ``mirror.every``. It plans with the pure
:mod:`ministry.core.mirror_plan` and fetches through the proxy
(:class:`~ministry.web.proxy.ProxyCatalog`): pages land in the same page
cache and files in the same blob store, so a mirrored file is served exactly
like a proxied one that a client happened to ask for first. That also gives
the run its properties for free:

- every file is checked against the page's sha256 before it is kept
  (:meth:`ProxyFiles.fetch` runs the proxy's own download);
- incremental: each project page is revalidated with its ETag, so an
  unchanged project costs one 304, and its files are already on disk;
- resumable: a file in the store was verified before it was committed, so
  a run killed halfway is resumed by the next one without downloading any
  of it again.

One run at a time: a trigger while a run is going (the timer, or
``ministry-admin mirror run`` in the same process) is skipped. With the
Redis store, processes also take a lease in Redis (``SET NX PX``, renewed
during the run, released at the end; a dead holder's lease expires), so only
one of them mirrors at a time. With the embedded SQLite store one process is
assumed, as for everything else that store does. A run never lets an
exception escape the timer: it is logged and recorded in :class:`MirrorStatus`.

Mirrored files are in the proxy's cache, so ``--cache-max-size`` applies to
them too: give a bound that holds the selection, or none.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from twisted.application.internet import TimerService
from twisted.internet.defer import DeferredList, DeferredSemaphore, ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from ministry.config import Settings
from ministry.core.errors import MinistryError
from ministry.core.mirror_plan import (
    MirrorConfig,
    Need,
    Release,
    bad_requirements,
    dependencies,
    metadata_source,
    select,
)
from ministry.core.models import FileRecord
from ministry.core.names import parse_filename
from ministry.core.upstream_pages import UpstreamFile, UpstreamPage, cooled
from ministry.stores.redis import RedisStore, release_lease, try_lease
from ministry.upstream.client import UpstreamError
from ministry.web.proxy import ProxyCatalog, make_proxy

log = Logger()

#: Files downloaded at once.
PARALLEL = 4
#: The Redis lease's lifetime; renewed every third of it while a run goes on.
LEASE_TTL = 60.0
LEASE_NAME = "mirror"
#: Errors kept in the status (the first ones of the run: they are the causes).
MAX_ERRORS = 100


@dataclass
class MirrorStatus:
    """What the mirror is doing and has done, for /mirror/, /health and /metrics."""

    every: float
    running: bool = False
    projects_done: int = 0
    projects_total: int = 0
    #: This run's (or the last run's) files fetched and bytes fetched.
    files_fetched: int = 0
    bytes_fetched: int = 0
    #: This run's selected files that were already verified in storage.
    files_present: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    last_success: float | None = None
    next_run: Callable[[], float | None] = lambda: None
    runs: int = 0
    failed_runs: int = 0
    skipped_runs: int = 0
    #: Totals over this process's life (Prometheus counters).
    files_fetched_total: int = 0
    bytes_fetched_total: int = 0
    errors_total: int = 0
    current: str | None = None

    def error(self, project: str, message: str) -> None:
        self.errors_total += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((project, message))
        log.warn("Mirror: {project}: {error}", project=project, error=message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": "running" if self.running else "idle",
            "every_seconds": self.every,
            "current_project": self.current,
            "projects_done": self.projects_done,
            "projects_total": self.projects_total,
            "files_fetched": self.files_fetched,
            "bytes_fetched": self.bytes_fetched,
            "files_present": self.files_present,
            "errors": [{"project": project, "error": error} for project, error in self.errors],
            "run_started": _iso(self.started),
            "run_finished": _iso(self.finished),
            "last_success": _iso(self.last_success),
            "next_run": _iso(self.next_run()),
            "runs": self.runs,
            "failed_runs": self.failed_runs,
            "skipped_runs": self.skipped_runs,
        }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _wheel_metadata(path: str, filename: str) -> bytes:
    from ministry.core.archives import read_core_metadata

    with open(path, "rb") as handle:
        return read_core_metadata(handle, parse_filename(filename))


class MirrorService(TimerService):
    """Runs the mirror at start-up and every ``config.every`` (see the module docstring)."""

    def __init__(
        self,
        config: MirrorConfig,
        proxy: ProxyCatalog,
        store: Any,
        *,
        parallel: int = PARALLEL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config.every, self._tick)
        self.config = config
        self.proxy = proxy
        self.store = store
        self.parallel = parallel
        self.wall = clock
        self.status = MirrorStatus(config.every, next_run=self._next_run)
        self.holder = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
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
        return self.wall() + (loop.call.getTime() - loop.clock.seconds())

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
        status.started, status.finished = self.wall(), None
        status.runs += 1
        status.projects_done = status.projects_total = 0
        status.files_fetched = status.bytes_fetched = status.files_present = 0
        status.errors = []
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
        status.finished = self.wall()
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
        shown, _ = cooled(page.files, datetime.now(UTC), self.proxy.min_age)
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
        except UpstreamError as exc:
            self.status.error(project, str(exc))
            return None
        if page is None:
            self.status.error(project, "no upstream has this project")
        return page

    async def _fetch(self, record: FileRecord, source: UpstreamFile) -> None:
        size = await self.proxy.files.fetch(record, source)
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
                metadata = await self.proxy.files.metadata(record, sources[record.filename])
            else:
                path = self.proxy.files.blobs.local_path(record.blob_key)
                metadata = await deferToThread(_wheel_metadata, path, record.filename)
        except (MinistryError, OSError) as exc:
            message = exc.message if isinstance(exc, MinistryError) else str(exc)
            self.status.error(need.project, f"metadata of {record.filename}: {message}")
            return []
        for line in bad_requirements(metadata):
            log.warn(
                "Mirror: {file}: ignoring Requires-Dist {line!r}", file=record.filename, line=line
            )
        return dependencies(metadata, need)

    # -- the lease (Redis only) ---------------------------------------------------------

    async def _take_lease(self) -> bool:
        if not isinstance(self.store, RedisStore):
            return True
        return await try_lease(self.store, LEASE_NAME, self.holder, LEASE_TTL)

    def _renew_lease(self) -> LoopingCall | None:
        if not isinstance(self.store, RedisStore):
            return None

        def renew() -> Any:
            def checked(held: bool) -> None:
                if not held:
                    self.status.error("(run)", "lost the mirror lease; stopping the run")
                    self._lease_lost = True

            def failed(failure: Any) -> None:
                log.warn("Could not renew the mirror lease: {error}", error=failure.value)

            return try_lease(self.store, LEASE_NAME, self.holder, LEASE_TTL).addCallbacks(
                checked, failed
            )

        renewal = LoopingCall(renew)
        renewal.start(LEASE_TTL / 3, now=False)
        return renewal

    async def _release_lease(self) -> None:
        if isinstance(self.store, RedisStore):
            try:
                await release_lease(self.store, LEASE_NAME, self.holder)
            except Exception as exc:  # it expires anyway
                log.warn("Could not release the mirror lease: {error}", error=exc)


# -- ``ministry-admin mirror run`` --------------------------------------------------------


def progress_bar(status: MirrorStatus, width: int = 30) -> str:
    """One line: a bar of projects done, and what was fetched."""
    total = max(status.projects_total, 1)
    filled = width * status.projects_done // total
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {status.projects_done}/{status.projects_total} "
        f"projects, {status.files_fetched} files fetched ({status.bytes_fetched / 1e6:.1f} MB), "
        f"{status.files_present} already here, {len(status.errors)} errors"
    )


async def run_in_foreground(
    settings: Settings, config: MirrorConfig, store: Any, bar: TextIO
) -> MirrorStatus:
    """One mirror pass outside the daemon, drawing a progress bar on ``bar``.

    The same proxy machinery as the daemon's, on the same data directory,
    so what it fetches is served by the daemon at once.
    """
    proxy = make_proxy(settings, os.path.abspath(settings.data_dir))
    if proxy is None or not settings.upstream:
        raise ValueError("the mirror needs an upstream: set upstream (--upstream URL)")
    mirror = MirrorService(config, proxy, store)

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

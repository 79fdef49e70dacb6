"""Records and bytes kept in step: the collector of unclaimed bytes, and the check.

The commit protocol (``ministry.interfaces``) never lets a record be seen
without its bytes, and pays for it with bytes that may outlive their claim:
an upload whose claim the store could not confirm keeps its bytes, and so
does a process that died between commit and claim. :class:`BlobCollector`
removes those :data:`FIRST_PASS_DELAY` after start-up and then every
:data:`INTERVAL`, once they are older than :data:`GRACE_PERIOD` and the
store has confirmed that no record names them, together with staging files
that crashed uploads left behind.

Why a grace period and not just the store's word: the store is read after
the blobs were listed, but an upload may have committed its bytes and not
yet claimed them (or its claim may be queued in a stalled Redis). Such bytes
are fresh, and :meth:`FilesystemBlobStore.remove_stale` judges the age of the
very file it removes, so bytes committed again meanwhile stay.

:func:`check` is what ``ministry-admin check`` reports: records without
bytes, bytes without records, and bytes whose size (or, re-hashed, sha256)
is not the record's.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from ministry.core.errors import StoreUnavailable
from ministry.core.models import FileRecord
from ministry.interfaces import IBlobStore, IMetadataStore
from ministry.stores.blobs import StoredBlob

log = Logger()

#: How old unclaimed bytes (and staging files) must be before they are
#: removed: far longer than any claim can take, a stalled store included.
GRACE_PERIOD = 24 * 3600.0

#: Seconds between two passes of the collector.
INTERVAL = 3600.0
#: Seconds from start-up to the first pass. Not at once: a pass lists every
#: blob (300,000 at 100,000 projects: seconds of a thread holding the GIL,
#: and tens of MB), which doubled the time to a restarted daemon's first
#: answer and slowed its first minute of requests (issue 17). Nothing waits
#: for a pass: unclaimed bytes are only disk space, and already a day old.
FIRST_PASS_DELAY = 600.0


def sha256_of(path: str) -> str:
    """The hex sha256 of a file, read in chunks (on a thread: it blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


async def remove_unclaimed(
    store: IMetadataStore, blobs: IBlobStore, found: list[StoredBlob], cutoff: float
) -> list[str]:
    """Remove the blobs of ``found`` written before ``cutoff`` that no record names.

    ``found`` must have been listed before this asks the store, so that the
    store's answer is no older than the ages judged. Fires with the keys
    removed; a store that cannot answer removes nothing (its error is raised).
    """
    old = [blob for blob in found if blob.mtime < cutoff]
    if not old:
        return []
    claimed = await store.blob_keys()
    removed = []
    for blob in old:
        if blob.key not in claimed and await blobs.remove_stale(blob.key, cutoff):
            removed.append(blob.key)
    return removed


class BlobCollector(Service):
    """Removes unclaimed bytes and stale staging files.

    The first pass comes ``first_delay`` after start, the next every ``interval``.
    """

    def __init__(
        self,
        store: IMetadataStore,
        blobs: IBlobStore,
        clock: IReactorTime,
        grace: float = GRACE_PERIOD,
        interval: float = INTERVAL,
        first_delay: float = FIRST_PASS_DELAY,
    ) -> None:
        # Nothing runs before startService. The clock times the passes; ages
        # are judged by the files' own times, which are the system's.
        self.store = store
        self.blobs = blobs
        self.clock = clock
        self.grace = grace
        self.interval = interval
        self.first_delay = first_delay
        self._first: IDelayedCall | None = None
        self._loop: LoopingCall | None = None
        self._pass: Deferred[None] | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self._collect)
        self._loop.clock = self.clock
        self._first = self.clock.callLater(self.first_delay, self._loop.start, self.interval)

    def stopService(self) -> Deferred[None]:
        """Stop the timer, and fire once a pass in progress has finished."""
        super().stopService()
        if self._first is not None and self._first.active():
            self._first.cancel()
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()
        return self.running_pass()

    def running_pass(self) -> Deferred[None]:
        """Fires when the pass in progress (if any) has finished."""
        if self._pass is None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()

        def finished(result: object) -> object:
            waiter.callback(None)
            return result

        self._pass.addBoth(finished)
        return waiter

    def _collect(self) -> Deferred[None]:
        running = self._pass = ensureDeferred(self._collect_once())
        running.addBoth(self._finished)
        return running

    def _finished(self, _: object) -> None:
        self._pass = None

    async def _collect_once(self) -> None:
        """One pass; never fails, or the timer would stop for good."""
        try:
            staged = await deferToThread(self.blobs.cleanup_staging, self.grace)
            found = await self.blobs.list_blobs()
            removed = await remove_unclaimed(
                self.store, self.blobs, found, time.time() - self.grace
            )
        except StoreUnavailable as why:
            log.warn("Collecting unclaimed bytes waits for the store: {why}", why=why)
            return
        except Exception:
            log.failure("Collecting unclaimed bytes failed")
            return
        if staged or removed:
            log.info(
                "Removed {staged} stale staging files and {count} unclaimed blobs: {keys}",
                staged=staged,
                count=len(removed),
                keys=", ".join(removed),
            )


# -- ministry-admin check ------------------------------------------------------------


@dataclass
class CheckReport:
    """What :func:`check` found; nothing in it means the index is sound."""

    files: int = 0
    missing: list[FileRecord] = field(default_factory=list)
    damaged: list[tuple[FileRecord, str]] = field(default_factory=list)
    unclaimed: list[StoredBlob] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.damaged) + len(self.unclaimed)


async def check(store: IMetadataStore, blobs: IBlobStore, rehash: bool) -> CheckReport:
    """Compare every record with the blob store: sizes, and sha256 if ``rehash``.

    Records are read before the blobs are listed, so a file uploaded during
    the check shows at worst as (fresh) unclaimed bytes, never as missing.
    """
    report = CheckReport()
    records = []
    for project in await store.list_projects():
        records.extend(await store.list_files(project.name))
    found = {blob.key: blob for blob in await blobs.list_blobs()}
    report.files = len(records)
    for record in records:
        blob = found.get(record.blob_key)
        if blob is None:
            report.missing.append(record)
        elif blob.size != record.size:
            report.damaged.append((record, f"{blob.size} bytes, not {record.size}"))
        elif rehash:
            try:
                digest = await _rehash(blobs, record.blob_key)
            except FileNotFoundError:  # removed since it was listed
                report.missing.append(record)
                continue
            if digest != record.sha256:
                report.damaged.append((record, f"sha256 {digest}, not {record.sha256}"))
    claimed = {key for record in records for key in record.stored_keys}
    report.unclaimed = [blob for key, blob in sorted(found.items()) if key not in claimed]
    return report


async def _rehash(blobs: IBlobStore, key: str) -> str:
    """The sha256 of a committed blob, read whole (in a thread) from a local copy."""
    copy = await blobs.local_copy(key)
    try:
        return await deferToThread(sha256_of, copy.path)
    finally:
        copy.close()

"""LRU eviction of proxied files: one process at a time, never a pinned (mirrored) file.

When the unpinned total of the cache's index (:class:`~ministry.interfaces.ICacheIndex`)
passes ``--cache-max-size``, the process that notices takes the index's
lease (another that holds it is evicting already, and reads the total
again as it goes) and removes least recently used files until the total is
under ``LOW_WATER`` of the bound, a batch at a time. Before each file, the
lease is renewed once half of it has passed since it was last taken or
renewed (a batch of slow deletes can outlast it); if a renewal says another
process holds it now, this run stops at once.

The order, per file: first the entry is removed from the index, only if
its last use is still the one seen when it was chosen (a hit meanwhile, in
any process, spares it), and only then are its bytes deleted. In that
order, a concurrent hit finds the file gone from the index and fetches it
again, rather than being sent to bytes about to go. The one race left is a
fetch committing the same file again during the delete call: bytes missing
behind an entry, which the cache's check at a file's first use in a
process catches (the entry is dropped, the file fetched again). A delete
that fails puts the entry back, so the bytes are counted again; if the
index cannot be reached for that either, the bytes stay in storage
uncounted (logged) until a daemon's start-up scan of the blob store adds
them again. Pinned files are outside the LRU order and the total: never chosen.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ministry.core.errors import StorageUnavailable, StoreUnavailable
from ministry.interfaces import IBlobStore, ILease
from ministry.interfaces.cache_index import ICacheIndex
from ministry.stores.cache_index import EVICTION_LEASE
from ministry.stores.lease import holder_id

log = Logger()

#: Eviction brings the cache down to this fraction of its bound, so that it
#: does not run again after every download once the cache is full.
LOW_WATER = 0.9
#: Files a run takes from the index at a time.
BATCH = 100
#: How long the eviction lease lasts unless renewed (a dead evictor's lapses).
LEASE_DURATION = 120.0


def logged(action: str) -> Callable[[Failure], None]:
    """An errback logging the failure of background work (it never stops the cache)."""
    return lambda failure: log.failure(action, failure)


class _Lease:
    """The eviction lease while a run holds it: renewed once half of it has passed."""

    def __init__(self, lease: ILease, holder: str, clock: IReactorTime) -> None:
        """Made just before the lease is taken, so that its time is never overestimated."""
        self.lease = lease
        self.holder = holder
        self.clock = clock
        self.renewed = clock.seconds()
        self.lost = False

    async def kept(self) -> bool:
        """Whether the run may go on: renew the lease if due, and say if it was lost."""
        now = self.clock.seconds()
        if not self.lost and now - self.renewed >= LEASE_DURATION / 2:
            self.lost = not await self.lease.renew(self.holder, LEASE_DURATION)
            self.renewed = now  # timed from the asking: the lease lasts at least that long
            if self.lost:
                log.warn("Cache eviction stopped: its lease lapsed (another process may evict)")
        return not self.lost


class Eviction:
    """Evicts from ``blobs`` and ``index``; ``learn(key, None)`` tells the cache what went."""

    def __init__(
        self,
        blobs: IBlobStore,
        index: ICacheIndex,
        max_size: int | None,
        learn: Callable[[str, int | None], None],
        clock: IReactorTime,
    ) -> None:
        self.blobs = blobs
        self.index = index
        self.max_size = max_size
        self.learn = learn
        self.clock = clock
        #: Who this process is, for the lease.
        self.holder = holder_id(EVICTION_LEASE)
        #: Files this process evicted.
        self.evicted = 0
        self._running = False

    def soon(self) -> None:
        """Start a run unless one is going on here or there is no bound; failures are logged."""
        if self.max_size is None or self._running:
            return
        ensureDeferred(self._run(self.max_size)).addErrback(logged("Cache eviction failed"))

    async def _run(self, bound: int) -> None:
        """If over ``bound``, take the lease and evict down to the low-water mark."""
        self._running = True
        lease = self.index.lease
        try:
            if await self.index.total() <= bound:
                return
            held = _Lease(lease, self.holder, self.clock)  # timed from before it is asked
            if not await lease.acquire(self.holder, LEASE_DURATION):
                return  # another process evicts
            try:
                await self._down_to(int(bound * LOW_WATER), held)
            finally:
                await lease.release(self.holder)
        finally:
            self._running = False

    async def _down_to(self, target: int, lease: _Lease) -> None:
        """Remove least recently used files, a batch at a time, while the lease is ours."""
        freed = count = 0
        total = await self.index.total()
        while total > target and not lease.lost:
            batch = await self.index.oldest(BATCH)
            if not batch:
                break
            for key, size, used in batch:
                if total <= target or not await lease.kept():
                    break
                if await self._one(key, size, used):
                    total, freed, count = total - size, freed + size, count + 1
            total = await self.index.total()
        log.info(
            "Evicted {count} cached upstream files ({bytes} bytes); {size} bytes remain",
            count=count,
            bytes=freed,
            size=total,
        )

    async def _one(self, key: str, size: int, used: float) -> bool:
        """Forget ``key`` (unless used since it was chosen), then delete its bytes."""
        if not await self.index.remove(key, used):
            return False  # used, pinned or evicted since it was chosen
        self.learn(key, None)
        try:
            await self.blobs.delete(key)
        except StorageUnavailable:
            await self._count_again(key, size, used)
            raise
        self.evicted += 1
        return True

    async def _count_again(self, key: str, size: int, used: float) -> None:
        """Put back the entry of bytes a delete may have left (see the module docstring)."""
        try:
            await self.index.add(key, size, used)
        except StoreUnavailable as exc:
            log.error(
                "Could not delete {key} nor count it again ({error}): uncounted until "
                "the next start-up scan",
                key=key,
                error=exc,
            )
            return
        self.learn(key, size)

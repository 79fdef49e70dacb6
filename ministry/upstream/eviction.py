"""LRU eviction of proxied files: one process at a time, never a pinned (mirrored) file.

When the unpinned total of the cache's index (:class:`~ministry.interfaces.ICacheIndex`)
passes ``--cache-max-size``, the process that notices takes the index's
lease (another that holds it is evicting already, and reads the total
again as it goes) and removes least recently used files until the total is
under ``LOW_WATER`` of the bound, a batch at a time, renewing the lease
between batches.

The order, per file: first the entry is removed from the index, only if
its last use is still the one seen when it was chosen (a hit meanwhile, in
any process, spares it), and only then are its bytes deleted. In that
order, a concurrent hit finds the file gone from the index and fetches it
again, rather than being sent to bytes about to go. The one race left is a
fetch committing the same file again during the delete call: bytes missing
behind an entry, which the cache's check at a file's first use in a
process catches (the entry is dropped, the file fetched again). A delete
that fails puts the entry back, so bytes are never left uncounted.
Pinned files are outside the LRU order and the total: never chosen.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ministry.core.errors import StorageUnavailable
from ministry.interfaces import IBlobStore, ICacheIndex

log = Logger()

#: Eviction brings the cache down to this fraction of its bound, so that it
#: does not run again after every download once the cache is full.
LOW_WATER = 0.9
#: Files a run takes from the index at a time; the lease is renewed between.
BATCH = 100
#: How long the eviction lease lasts unless renewed (a dead evictor's lapses).
LEASE_DURATION = 120.0


def logged(action: str) -> Callable[[Failure], None]:
    """An errback logging the failure of background work (it never stops the cache)."""
    return lambda failure: log.failure(action, failure)


class Eviction:
    """Evicts from ``blobs`` and ``index``; ``learn(key, None)`` tells the cache what went."""

    def __init__(
        self,
        blobs: IBlobStore,
        index: ICacheIndex,
        max_size: int | None,
        learn: Callable[[str, int | None], None],
    ) -> None:
        self.blobs = blobs
        self.index = index
        self.max_size = max_size
        self.learn = learn
        #: Who this process is, for the lease.
        self.holder = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
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
            if not await lease.acquire(self.holder, LEASE_DURATION):
                return  # another process evicts
            try:
                await self._down_to(int(bound * LOW_WATER))
            finally:
                await lease.release(self.holder)
        finally:
            self._running = False

    async def _down_to(self, target: int) -> None:
        """Remove least recently used files, a batch at a time, while the lease is ours."""
        freed = count = 0
        total = await self.index.total()
        while total > target:
            batch = await self.index.oldest(BATCH)
            if not batch:
                break
            for key, size, used in batch:
                if total <= target:
                    break
                if await self._one(key, size, used):
                    total, freed, count = total - size, freed + size, count + 1
            if not await self.index.lease.renew(self.holder, LEASE_DURATION):
                break
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
            await self.index.add(key, size, used)  # still there: counted again
            self.learn(key, size)
            raise
        self.evicted += 1
        return True

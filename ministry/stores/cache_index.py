"""The index of proxied files kept in this process: the embedded store's :class:`ICacheIndex`.

The SQLite store serves one process (see :mod:`ministry.stores.sqlite`), so
the cache's index lives in memory: filled at start-up by the cache's scan of
its blob store, then kept by the process's own downloads, hits and
evictions. Several processes on one Redis share the Redis one instead
(:mod:`ministry.stores.redis.cache_index`); both follow one contract
(``tests/test_cache_index.py``).
"""

from __future__ import annotations

import heapq

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from ministry.interfaces import ICacheIndex, ILease
from ministry.stores.lease import LocalLease

#: The name of the eviction lease, in every store.
EVICTION_LEASE = "cache-eviction"


@implementer(ICacheIndex)
class LocalCacheIndex:
    """Held keys, their sizes and last uses, in dictionaries; ``lease`` keeps evictors apart."""

    def __init__(self, lease: ILease | None = None) -> None:
        self.lease = lease if lease is not None else LocalLease(EVICTION_LEASE)
        self._sizes: dict[str, int] = {}
        self._used: dict[str, float] = {}  # held and unpinned keys only: the LRU order
        self._pinned: set[str] = set()
        self._total = 0

    def add(self, key: str, size: int, used: float) -> Deferred[int]:
        self._add(key, size, used)
        return succeed(self._total)

    def seed(self, entries: list[tuple[str, int, float]]) -> Deferred[None]:
        for key, size, used in entries:
            if key not in self._sizes:
                self._add(key, size, used)
        return succeed(None)

    def size(self, key: str) -> Deferred[int | None]:
        return succeed(self._sizes.get(key))

    def held(self) -> Deferred[dict[str, int]]:
        return succeed(dict(self._sizes))

    def touch(self, key: str, used: float) -> Deferred[None]:
        if key in self._used:
            self._used[key] = max(self._used[key], used)
        return succeed(None)

    def oldest(self, count: int) -> Deferred[list[tuple[str, int, float]]]:
        found = heapq.nsmallest(count, self._used.items(), key=lambda item: item[1])
        return succeed([(key, self._sizes[key], used) for key, used in found])

    def remove(self, key: str, used: float | None = None) -> Deferred[bool]:
        if key not in self._sizes or (used is not None and self._used.get(key) != used):
            return succeed(False)
        size = self._sizes.pop(key)
        if self._used.pop(key, None) is not None:
            self._total -= size
        return succeed(True)

    def pin(self, key: str) -> Deferred[None]:
        self._pinned.add(key)
        if self._used.pop(key, None) is not None:
            self._total -= self._sizes[key]
        return succeed(None)

    def total(self) -> Deferred[int]:
        return succeed(self._total)

    def _add(self, key: str, size: int, used: float) -> None:
        old = self._sizes.get(key)
        self._sizes[key] = size
        if key not in self._pinned:
            self._total += size - (old or 0)
            self._used[key] = used

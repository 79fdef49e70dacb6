"""The index of proxied files on Redis: one :class:`ICacheIndex` for every process on it.

Keys (see the layout in :mod:`ministry.stores.redis.scripts`): a hash of
held keys and sizes, a sorted set of the held, unpinned keys by last use
(the LRU order), a set of pinned keys and the total of the sorted set's
sizes. Every change is one script, so the total always matches the set,
whichever processes change it at once. Last uses are stored as whole
milliseconds, so that the one :meth:`RedisCacheIndex.oldest` gave compares
equal when :meth:`RedisCacheIndex.remove` checks it.

Calls go through the store's command and script runners, with their
timeout: a Redis that does not answer fails them with ``StoreUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ministry.interfaces import ILease
from ministry.interfaces.cache_index import ICacheIndex
from ministry.stores.cache_index import EVICTION_LEASE
from ministry.stores.redis import scripts
from ministry.stores.redis.lease import RedisLease
from ministry.stores.redis.records import text_pairs
from ministry.stores.redis.scripts import ScriptRunner

#: Entries one seeding script adds: a bounded script, so Redis never stalls for others.
SEED_BATCH = 500


def _milliseconds(seconds: float) -> int:
    return round(seconds * 1000)


@implementer(ICacheIndex)
class RedisCacheIndex:
    """The cache's index under ``key("cache", ...)``; ``lease`` keeps evictors apart."""

    def __init__(
        self, key: Callable[..., str], command: Callable[..., Deferred[Any]], script: ScriptRunner
    ) -> None:
        self.lease: ILease = RedisLease(key("lease", EVICTION_LEASE), command, script)
        self._sizes, self._lru, self._pinned, self._total = (
            key("cache", part) for part in ("sizes", "lru", "pinned", "total")
        )
        self._command = command
        self._script = script

    def _keys(self) -> list[str]:
        return [self._sizes, self._lru, self._pinned, self._total]

    def add(self, key: str, size: int, used: float) -> Deferred[int]:
        return self._script(scripts.CACHE_ADD, self._keys(), [key, size, _milliseconds(used)])

    def seed(self, entries: list[tuple[str, int, float]]) -> Deferred[None]:
        return Deferred.fromCoroutine(self._seed(entries))

    async def _seed(self, entries: list[tuple[str, int, float]]) -> None:
        for start in range(0, len(entries), SEED_BATCH):
            args = [
                value
                for key, size, used in entries[start : start + SEED_BATCH]
                for value in (key, size, _milliseconds(used))
            ]
            await self._script(scripts.CACHE_SEED, self._keys(), args)

    def size(self, key: str) -> Deferred[int | None]:
        d = self._command("HGET", self._sizes, key)
        return d.addCallback(lambda size: None if size is None else int(size))

    def held(self) -> Deferred[dict[str, int]]:
        d = self._command("HGETALL", self._sizes)
        return d.addCallback(lambda reply: {k: int(v) for k, v in text_pairs(reply).items()})

    def touch(self, key: str, used: float) -> Deferred[None]:
        d = self._script(scripts.CACHE_TOUCH, [self._lru], [key, _milliseconds(used)])
        return d.addCallback(lambda _: None)

    def oldest(self, count: int) -> Deferred[list[tuple[str, int, float]]]:
        d = self._script(scripts.CACHE_OLDEST, [self._lru, self._sizes], [count])
        return d.addCallback(
            lambda found: [(key.decode(), int(size), int(used) / 1000) for key, used, size in found]
        )

    def remove(self, key: str, used: float | None = None) -> Deferred[bool]:
        condition = "" if used is None else _milliseconds(used)
        d = self._script(scripts.CACHE_REMOVE, self._keys(), [key, condition])
        return d.addCallback(bool)

    def pin(self, key: str) -> Deferred[None]:
        return self._script(scripts.CACHE_PIN, self._keys(), [key]).addCallback(lambda _: None)

    def total(self) -> Deferred[int]:
        d = self._command("GET", self._total)
        return d.addCallback(lambda total: int(total or 0))

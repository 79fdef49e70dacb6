"""The index of proxied files kept in this process: the embedded store's :class:`ICacheIndex`.

The SQLite store serves one process (see :mod:`ministry.stores.sqlite`), so
the cache's index lives in memory: filled at start-up by the cache's scan of
its blob store, then kept by the process's own downloads, hits and
evictions. Several processes on one Redis share the Redis one instead
(:mod:`ministry.stores.redis.cache_index`); both follow one contract
(``tests/test_cache_index.py``).

Pins outlive a restart, since the scan cannot tell a mirrored file from a
proxied one: without them, the first eviction after a start could take
mirrored files before the mirror's next pass pins them again. Given a
``pins`` path, each new pin is appended to that file as a line (in a
thread, flushed when closed: an operating system crash may lose the last
ones, which the mirror's next pass pins again; the pins made while one
append runs go in the next, together: a mirror pass pins thousands), and
the file is read, in a
thread too, before the index answers its first call. Pins are for good, so
the file only grows by the files ever mirrored; a line read twice is one pin.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable
from typing import TypeVar

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ministry.core.errors import StoreUnavailable
from ministry.interfaces import ILease
from ministry.interfaces.cache_index import ICacheIndex
from ministry.stores.lease import LocalLease

log = Logger()

T = TypeVar("T")

#: The name of the eviction lease, in every store.
EVICTION_LEASE = "cache-eviction"


def _read_pins(path: str) -> set[str]:
    """The keys pinned in the file (none if there is no file yet)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return {line.rstrip("\n") for line in handle if line.strip()}
    except FileNotFoundError:
        return set()


def _append_pins(path: str, keys: list[str]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:  # one write: appends do not mix
        handle.write("".join(key + "\n" for key in keys))


@implementer(ICacheIndex)
class LocalCacheIndex:
    """Held keys, their sizes and last uses, in dictionaries; ``lease`` keeps evictors apart.

    ``pins``: the file that keeps pins across restarts (see the module
    docstring); without it, they last as long as the process.
    """

    def __init__(self, lease: ILease | None = None, pins: str | None = None) -> None:
        self.lease = lease if lease is not None else LocalLease(EVICTION_LEASE)
        self.pins = pins
        self._sizes: dict[str, int] = {}
        self._used: dict[str, float] = {}  # held and unpinned keys only: the LRU order
        self._pinned: set[str] = set()
        self._saved: set[str] = set()  # pins in the file
        self._total = 0
        self._loaded = pins is None
        self._waiting: list[Deferred[None]] = []  # calls made while the file is read
        #: Pins for the file's next append, each with who waits for it.
        self._unwritten: dict[str, list[Deferred[None]]] = {}
        self._appending = False

    def add(self, key: str, size: int, used: float) -> Deferred[int]:
        return self._when_loaded(lambda: self._add(key, size, used))

    def seed(self, entries: list[tuple[str, int, float]]) -> Deferred[None]:
        def seed() -> None:
            for key, size, used in entries:
                if key not in self._sizes:
                    self._add(key, size, used)

        return self._when_loaded(seed)

    def size(self, key: str) -> Deferred[int | None]:
        return self._when_loaded(lambda: self._sizes.get(key))

    def held(self) -> Deferred[dict[str, int]]:
        return self._when_loaded(lambda: dict(self._sizes))

    def touch(self, key: str, used: float) -> Deferred[None]:
        def touch() -> None:
            if key in self._used:
                self._used[key] = max(self._used[key], used)

        return self._when_loaded(touch)

    def oldest(self, count: int) -> Deferred[list[tuple[str, int, float]]]:
        def oldest() -> list[tuple[str, int, float]]:
            found = heapq.nsmallest(count, self._used.items(), key=lambda item: item[1])
            return [(key, self._sizes[key], used) for key, used in found]

        return self._when_loaded(oldest)

    def remove(self, key: str, used: float | None = None) -> Deferred[bool]:
        def remove() -> bool:
            if key not in self._sizes or (used is not None and self._used.get(key) != used):
                return False
            size = self._sizes.pop(key)
            if self._used.pop(key, None) is not None:
                self._total -= size
            return True

        return self._when_loaded(remove)

    def pin(self, key: str) -> Deferred[None]:
        """Pin at once; fires once the pin is in the file too (a failure there is logged)."""
        return self._when_loaded(lambda: self._pin(key))

    def total(self) -> Deferred[int]:
        return self._when_loaded(lambda: self._total)

    def _add(self, key: str, size: int, used: float) -> int:
        old = self._sizes.get(key)
        self._sizes[key] = size
        if key not in self._pinned:
            self._total += size - (old or 0)
            self._used[key] = used
        return self._total

    def _pin(self, key: str) -> Deferred[None]:
        self._pinned.add(key)
        if self._used.pop(key, None) is not None:
            self._total -= self._sizes[key]
        if self.pins is None or key in self._saved:
            return succeed(None)
        written: Deferred[None] = Deferred()
        self._unwritten.setdefault(key, []).append(written)
        if not self._appending:
            self._append()
        return written

    def _append(self) -> None:
        """Append every pin not written yet in one thread call; then the next batch, if any."""
        batch, self._unwritten = self._unwritten, {}
        self._appending = True
        d = deferToThread(_append_pins, self.pins, list(batch))
        d.addCallbacks(lambda _: self._saved.update(batch), self._unsaved, errbackArgs=(batch,))
        d.addCallback(lambda _: self._appended(batch))

    def _appended(self, batch: dict[str, list[Deferred[None]]]) -> None:
        self._appending = False
        if self._unwritten:
            self._append()
        for waiting in batch.values():
            for written in waiting:
                written.callback(None)

    def _unsaved(self, failure: Failure, batch: dict[str, list[Deferred[None]]]) -> None:
        log.error(
            "Could not keep {count} pins (the first: {key}) in {path} ({error}): they hold "
            "until a restart, and the mirror's next pass tries again",
            count=len(batch),
            key=next(iter(batch)),
            path=self.pins,
            error=failure.value,
        )

    # -- the pins' file, read before the first answer -------------------------------

    def _when_loaded(self, call: Callable[[], T | Deferred[T]]) -> Deferred[T]:
        """``call()``'s result, once the pins are read from their file (at the first call)."""
        if self._loaded:
            return maybeDeferred(call)
        waiting: Deferred[None] = Deferred()
        self._waiting.append(waiting)
        if len(self._waiting) == 1:
            read = deferToThread(_read_pins, self.pins)
            read.addCallbacks(self._pins_read, self._pins_unread)
        return waiting.addCallback(lambda _: call())

    def _pins_read(self, keys: set[str]) -> None:
        self._pinned |= keys
        self._saved |= keys
        self._loaded = True
        self._wake(None)

    def _pins_unread(self, failure: Failure) -> None:
        """Every waiting call fails, and the next one reads the file again."""
        reason = f"Could not read the pinned files in {self.pins}: {failure.value}"
        self._wake(StoreUnavailable(reason))

    def _wake(self, error: StoreUnavailable | None) -> None:
        waiting, self._waiting = self._waiting, []
        for call in waiting:
            if error is None:
                call.callback(None)
            else:
                call.errback(Failure(error))

"""Rendered pages and project snapshots, kept until their project changes.

Reads outnumber writes by orders of magnitude on a package index, so every
page is rendered once and then served from here as bytes. Entries are keyed
by a tuple whose first item is the project's canonical name ("" for pages
that cover every project, such as ``/simple/``). The store tells us when a
project changes (``IMetadataStore.subscribe``) and we drop that project's
entries and the all-project ones: no timeouts, no serial lookups per request.

A render that was started before an invalidation must not be cached after
it, or a stale page would live forever: each project has a generation number
bumped on invalidation, and ``fill`` stores its result only if the generation
is unchanged. Concurrent misses for one key share one computation.

Projects proxied from an upstream change without the store knowing, so their
scope can also be given a deadline (:meth:`PageCache.expire_at`): the first
look-up at or after it drops the scope as an invalidation would. Hosted
projects have none, and pay one dictionary miss for the check.

The cache is bounded in bytes (``--page-cache-size``), not in entries: one
project page with a big README weighs as much as thousands of small pages.
Each value is weighed once, when stored (:func:`weight`); the least recently
used entries go first, and a value bigger than the whole bound is passed on
without being kept. Keys must never hold anything a client can vary freely
(a ``Host`` header, say), or clients could fill the cache with copies.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed

ALL = ""  # the project name of pages that list every project

#: The scope of values keyed by content (a README by its file's digest): no
#: project change makes them wrong, so no invalidation drops them; only LRU does.
CONTENT = "#content"

#: What a value's bookkeeping costs besides its own bytes (key, dict slots).
OVERHEAD = 256

Key = tuple[Hashable, ...]


def weight(value: Any) -> int:
    """The bytes a cached value is counted as: its ``cache_weight()`` if it has one."""
    if isinstance(value, bytes | str):
        return sys.getsizeof(value) + OVERHEAD
    measure = getattr(value, "cache_weight", None)
    return OVERHEAD + (measure() if measure is not None else 1024)


class PageCache:
    """An LRU of rendered values bounded in bytes, with per-project invalidation."""

    def __init__(
        self, max_bytes: int = 256 * 1024**2, clock: Callable[[], float] = time.time
    ) -> None:
        self._entries: OrderedDict[Key, tuple[Any, int]] = OrderedDict()
        self._keys_of: dict[str, set[Key]] = {}
        self._pending: dict[Key, list[Deferred]] = {}
        self._generations: dict[str, int] = {}
        self._deadlines: dict[str, float] = {}
        self.max_bytes = max_bytes
        #: The weight of every value held now; never above ``max_bytes``.
        self.bytes = 0
        self._clock = clock
        self.hits = 0
        self.misses = 0

    def get(self, key: Key) -> Any | None:
        """The cached value, or None; a hit marks the entry recently used."""
        deadline = self._deadlines.get(key[0])
        if deadline is not None and self._clock() >= deadline:
            self.drop(key[0])
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[0]

    def get_or_fill(self, key: Key, compute: Callable[[], Any]) -> Deferred:
        """The cached value at once, or on a miss :meth:`fill`'s computation of it.

        What every reader wants: one look-up, and on a miss one shared render.
        """
        value = self.get(key)
        return succeed(value) if value is not None else self.fill(key, compute)

    def fill(self, key: Key, compute: Callable[[], Any]) -> Deferred:
        """Compute the value for a missed key once, cache it, and fire with it.

        ``compute`` may return a value or a Deferred. A None result is passed
        on but not cached. Call it after a :meth:`get` that missed, or use
        :meth:`get_or_fill`.
        """
        waiters = self._pending.get(key)
        if waiters is not None:
            waiter: Deferred = Deferred()
            waiters.append(waiter)
            return waiter
        self._pending[key] = []
        generation = self._generations.get(key[0], 0)
        done = maybeDeferred(compute)
        done.addCallbacks(self._succeeded, self._failed, (key, generation), None, (key,))
        return done

    def _succeeded(self, value: Any, key: Key, generation: int) -> Any:
        if value is not None and self._generations.get(key[0], 0) == generation:
            self._store(key, value)
        for waiter in self._pending.pop(key, []):
            waiter.callback(value)
        return value

    def _failed(self, failure: Any, key: Key) -> Any:
        for waiter in self._pending.pop(key, []):
            waiter.errback(failure)
        return failure

    def upgrade(self, key: Key, old: Any, new: Any) -> None:
        """Hold ``new`` in place of ``old``, if ``old`` is still what ``key`` holds.

        For a value improved after it was cached (a page given its gzip copy
        in a thread): an invalidation meanwhile dropped ``old``, and ``new``,
        made from it, must not bring the stale page back. ``new`` is weighed
        again, so the bound still holds (it may evict others, or be refused).
        """
        entry = self._entries.get(key)
        if entry is not None and entry[0] is old:
            self._store(key, new)

    def _store(self, key: Key, value: Any) -> None:
        size = weight(value)
        if size > self.max_bytes:
            return
        self._remove(key)
        self._entries[key] = (value, size)
        self.bytes += size
        self._keys_of.setdefault(key[0], set()).add(key)
        while self.bytes > self.max_bytes:
            old = next(iter(self._entries))
            self._remove(old)
            if old[0] not in self._keys_of:
                self._deadlines.pop(old[0], None)

    def _remove(self, key: Key) -> None:
        """Forget one entry, if held, and its weight."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= entry[1]
        keys = self._keys_of.get(key[0])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys_of[key[0]]

    def invalidate(self, project: str) -> None:
        """Drop a project's entries and every page that lists all projects."""
        for name in {project, ALL}:
            self.drop(name)

    def drop(self, scope: str) -> None:
        """Drop the entries of one scope (a project, or ALL) and its deadline."""
        self._generations[scope] = self._generations.get(scope, 0) + 1
        self._deadlines.pop(scope, None)
        for key in list(self._keys_of.get(scope, ())):
            self._remove(key)

    def expire_at(self, scope: str, when: float) -> None:
        """Drop ``scope``'s entries at the first look-up at or after ``when`` (epoch seconds)."""
        self._deadlines[scope] = when

    def __len__(self) -> int:
        return len(self._entries)

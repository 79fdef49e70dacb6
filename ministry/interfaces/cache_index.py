"""The interface of the index of proxied files (see :class:`ICacheIndex`)."""

from __future__ import annotations

from zope.interface import Attribute, Interface


class ICacheIndex(Interface):
    """Which proxied upstream files are held, shared by every process of one index.

    The cache of proxied files (:mod:`ministry.upstream.cache`) keeps its
    bytes in a blob store of its own; this index says which keys it holds,
    their sizes and when each was last used (the LRU order), so that a file
    one process fetched is served by all the others at once, and so that
    eviction can pick the least recently used files without listing the
    store. Pinned keys (mirrored files) are out of the LRU order and out of
    the total: eviction never picks them. A key may be pinned before it is
    held. Times are clock seconds, as the callers' clocks give them.

    Every call returns a Deferred; each change is atomic with the total, so
    the total is always the sum of the sizes of the held, unpinned keys.
    ``tests/test_cache_index.py`` runs one suite against both implementations
    (in this process, :mod:`ministry.stores.cache_index`; on Redis,
    :mod:`ministry.stores.redis.cache_index`).
    """

    lease = Attribute(
        "The ILease an evicting process holds, as widely shared as the index: "
        "one evictor at a time."
    )

    def add(key: str, size: int, used: float):
        """Deferred[int]: ``key`` is held, ``size`` bytes, last used at ``used``.

        Adding a held key again replaces its size and last use. Fires with
        the total of unpinned bytes afterwards.
        """

    def seed(entries: list[tuple[str, int, float]]):
        """Deferred[None]: add each ``(key, size, used)`` not held yet; held ones stay as they are.

        For a scan of the blob store: what a scan found may be older than
        what the index knows.
        """

    def size(key: str):
        """Deferred[int | None]: the size of a held key, None if it is not held."""

    def held():
        """Deferred[dict[str, int]]: every held key (pinned ones too) with its size."""

    def touch(key: str, used: float):
        """Deferred[None]: move a held, unpinned key's last use to ``used`` if that is later."""

    def oldest(count: int):
        """Deferred[list[tuple[str, int, float]]]: up to ``count`` unpinned held keys.

        Least recently used first, as ``(key, size, last use)``.
        """

    def remove(key: str, used: float | None = None):
        """Deferred[bool]: forget a held key; True if it was held and is forgotten.

        With ``used`` (a last use :meth:`oldest` gave), only if the key is
        unpinned and still has that last use: not used, re-added or pinned
        since it was chosen for eviction. A pin outlives a removal.
        """

    def pin(key: str):
        """Deferred[None]: never evict ``key``: out of the LRU order and the total, for good."""

    def total():
        """Deferred[int]: the bytes of held, unpinned keys (what ``--cache-max-size`` bounds)."""

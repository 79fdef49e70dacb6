"""The proxied files kept: which are held, their sizes, and LRU eviction, across processes.

Layout. The proxied bytes live in a blob store of their own (any
:class:`~ministry.interfaces.IBlobStore`: ``<data-dir>/upstream/files/``,
or the bucket's ``upstream`` prefix), at ``FileRecord.blob_key`` (a wheel's
PEP 658 metadata at ``<blob_key>.metadata`` beside it, a PEP 740
provenance the upstream offers at ``<blob_key>.provenance``; each is its
own entry in the LRU order). A store apart from
the uploads' means eviction can never touch a private upload, even one with
the same bytes. Nothing here lists, stats or opens a path: only the blob
store's calls.

Is a file held? The :class:`~ministry.interfaces.ICacheIndex` says, shared
through the metadata store (Redis, for several daemons), so a file fetched
by one daemon is served by every other at once, without a second fetch.
The first time a process uses a held file (and again every
``STAMP_INTERVAL``), it also asks the blob store: if the bytes are gone
(removed by hand, or by an eviction that raced a download) the entry is
dropped and the file is a miss, fetched again. That same first use, and
every ``STAMP_INTERVAL`` after, moves the file's last use in the index
(the LRU order every process's hits count in). While the index cannot be
reached, the blob store alone answers.

Pages are built synchronously, so :meth:`FileCache.as_served` reads a view
of the index in memory: read at start, every ``REFRESH_INTERVAL``, and kept
up to date by this process's own downloads, hits and evictions. Its
staleness (files another daemon fetched or evicted since) only shows in
offline listings and in the sizes pages did not give; serving never reads
it.

Eviction (:mod:`ministry.upstream.eviction`) keeps the unpinned total
under ``--cache-max-size``, one process at a time. Mirrored files are
pinned (:meth:`FileCache.pin`) before they are fetched: out of the LRU
order and the total, eviction never sees them. With the embedded store the
index lives in this process's memory: each start rebuilds it by the scan
below, and only its pins are kept on disk across restarts (see
:mod:`ministry.stores.cache_index`), so the scan never offers a mirrored
file to eviction.

A start-up scan of the blob store (in the background of the proxy's start)
adds what the index does not know yet, such as a cache directory kept from
before the index existed; it never changes what the index already has.

Bytes arrive through :mod:`ministry.upstream.downloads`, which stages,
verifies and then commits them here; this module never talks to an upstream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from ministry.core.errors import NotFound, StorageUnavailable, StoreUnavailable
from ministry.core.models import METADATA_SUFFIX, PROVENANCE_SUFFIX, FileRecord
from ministry.core.names import parse_filename
from ministry.interfaces import IBlobStore
from ministry.interfaces.cache_index import ICacheIndex
from ministry.upstream.eviction import Eviction, logged

log = Logger()
T = TypeVar("T")

#: How often, at most, a held file's bytes are checked and its last use
#: written to the index, per file and process.
STAMP_INTERVAL = 600.0
#: How often the in-memory view is read again from the index (and the
#: total checked, for what other processes added).
REFRESH_INTERVAL = 300.0


@dataclass(frozen=True)
class Held:
    """A file the cache holds: its size."""

    size: int


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _wheel_metadata(path: str, filename: str) -> bytes:
    from ministry.core.archives import read_core_metadata

    with open(path, "rb") as handle:
        return read_core_metadata(handle, parse_filename(filename))


class FileCache:
    """Holds, sizes and evicts the proxied files (see the module docstring)."""

    def __init__(
        self,
        blobs: IBlobStore,
        index: ICacheIndex,
        *,
        max_size: int | None,
        clock: IReactorTime,
    ) -> None:
        self.blobs = blobs
        self.index = index
        self.max_size = max_size
        self.clock = clock
        self.eviction = Eviction(blobs, index, max_size, self._learn, clock)
        self._view: dict[str, int] = {}  # held key -> size, as far as this process knows
        self._learnt: dict[str, int | None] | None = None  # changes while the view is read
        self._stamped: dict[str, float] = {}  # key -> when last checked and touched here
        self._refresh: LoopingCall | None = None
        #: Whether the start-up scan has put what the blob store holds in the
        #: index; until then a key the index lacks is looked for in the store.
        self._seeded = False
        #: Client downloads served from the cache, and fetched from upstream.
        self.hits = 0
        self.misses = 0

    @property
    def hit_rate(self) -> float | None:
        """Share of client downloads served from the cache (None before any)."""
        total = self.hits + self.misses
        return self.hits / total if total else None

    @property
    def evicted(self) -> int:
        return self.eviction.evicted

    @property
    def cached_files(self) -> int:
        return len(self._view)

    @property
    def cache_bytes(self) -> int:
        """Bytes of held files and metadata, mirrored ones too, as far as this process knows."""
        return sum(self._view.values())

    async def start(self) -> None:
        """Read the index, add what the blob store holds beyond it, and refresh periodically."""
        self._refresh = LoopingCall(self._refresh_soon)
        self._refresh.clock = self.clock
        self._refresh.start(REFRESH_INTERVAL, now=False)
        try:
            await self._read_view()
            await self._seed()
        except (StoreUnavailable, StorageUnavailable) as exc:
            log.warn(
                "Could not read the proxy cache at start ({error}); its index is read "
                "again every {interval:g} s",
                error=exc,
                interval=REFRESH_INTERVAL,
            )
            return
        self.eviction.soon()

    def stop(self) -> None:
        if self._refresh is not None and self._refresh.running:
            self._refresh.stop()
        self._refresh = None

    # -- what is held -----------------------------------------------------------

    async def find(self, record: FileRecord, *, served: bool) -> Held | None:
        """The held file, or None; ``served``: a client gets it (a hit, for the counters)."""
        size = await self._held_size(record.blob_key)
        if size is None:
            return None
        if served:
            self.hits += 1
        return Held(size)

    def missed(self) -> None:
        """A client download had to go to the upstream."""
        self.misses += 1

    def as_served(self, record: FileRecord, *, held_only: bool) -> FileRecord | None:
        """The record as a page should show it, or None to leave it out.

        The held size replaces an unknown one. ``held_only`` (offline, or
        the upstream failing): only held files are listed, and only held
        metadata is offered, since nothing else could be served. Read from
        the view in memory (see the module docstring).
        """
        size = self._view.get(record.blob_key)
        if held_only and size is None:
            return None
        if size is not None and not record.size:
            record = record.with_changes(size=size)
        if (
            held_only
            and record.serves_metadata
            and record.blob_key + METADATA_SUFFIX not in self._view
        ):
            record = record.with_changes(metadata_sha256=None)
        return record

    async def wheel_metadata(self, record: FileRecord) -> bytes:
        """The core metadata inside a held wheel (read in a thread); NotFound if not held."""
        return await self.read_held(record, _wheel_metadata)

    async def read_held(self, record: FileRecord, read: Callable[[str, str], T]) -> T:
        """``read(path, filename)`` of a held file, in a thread; NotFound if not held."""
        if await self.find(record, served=False) is None:
            raise NotFound(f"{record.filename} is not cached")
        try:
            copy = await self.blobs.local_copy(record.blob_key)
        except FileNotFoundError:
            raise NotFound(f"{record.filename} is not cached") from None
        try:
            return await deferToThread(read, copy.path, record.filename)
        finally:
            copy.close()

    async def metadata(self, record: FileRecord) -> bytes | None:
        """The held ``.metadata`` of a wheel if it matches its page's sha256, else None."""
        key = record.blob_key + METADATA_SUFFIX
        if await self._held_size(key) is None:
            return None
        data = await self._read_small(key)
        # Checked on every read (it is small): the page's hash is what was advertised.
        if data is None or hashlib.sha256(data).hexdigest() != record.metadata_sha256:
            log.warn("Cached {key} is missing or not what its page describes", key=key)
            return None
        return data

    async def provenance(self, record: FileRecord) -> bytes | None:
        """The held upstream provenance of a file (checked when it was kept), or None."""
        key = record.blob_key + PROVENANCE_SUFFIX
        if await self._held_size(key) is None:
            return None
        return await self._read_small(key)

    async def pin(self, *records: FileRecord) -> None:
        """Never evict these files (nor their ``.metadata``, provenances): the mirror keeps them.

        Pinned held yet or not: what the mirror fetches next is never evicted.
        """
        keys = [record.blob_key for record in records]
        keys += [r.blob_key + METADATA_SUFFIX for r in records if r.serves_metadata]
        keys += [r.blob_key + PROVENANCE_SUFFIX for r in records if r.provenance_upstream]
        # Together, so that an index that writes its pins down writes them at once.
        await gatherResults([self.index.pin(key) for key in keys], consumeErrors=True)

    async def _held_size(self, key: str) -> int | None:
        """The size of a held key: the index says, the blob store confirms at first use."""
        try:
            size = await self.index.size(key)
        except StoreUnavailable as exc:
            log.warn("Proxy cache index unavailable, asking the blob store: {error}", error=exc)
            return await self.blobs.size(key)
        if size is None and not self._seeded:
            size = await self._found_before_the_scan(key)
        elif size is not None and self._due(key) and not await self._confirmed(key):
            size = None
        self._learn(key, size)
        return size

    async def _found_before_the_scan(self, key: str) -> int | None:
        """A key the index lacks while the start-up scan runs: held if the blob store has it.

        An in-process index starts empty at every start, and the scan of a
        large cache takes a while: without this a restart would fetch again
        every file asked for (by clients, and by the mirror's first run)
        before the scan reaches it.
        """
        size = await self.blobs.size(key)
        if size is not None:
            await self.index.seed([(key, size, self.clock.seconds())])
            self._stamped[key] = self.clock.seconds()
        return size

    def _due(self, key: str) -> bool:
        return self.clock.seconds() - self._stamped.get(key, float("-inf")) >= STAMP_INTERVAL

    async def _confirmed(self, key: str) -> bool:
        """Check a held key's bytes and move its last use; drop the entry if they are gone."""
        if await self.blobs.size(key) is None:
            log.warn(
                "Cached {key} is gone from {where}; fetched again",
                key=key,
                where=self.blobs.location,
            )
            await self.index.remove(key)
            return False
        now = self._stamped[key] = self.clock.seconds()
        self.index.touch(key, now).addErrback(logged("Could not record a cache hit"))
        return True

    async def _read_small(self, key: str) -> bytes | None:
        """A small blob's bytes (a ``.metadata``, a provenance), or None if it is missing."""
        try:
            copy = await self.blobs.local_copy(key)
        except FileNotFoundError:
            return None
        try:
            return await deferToThread(_read, copy.path)
        except FileNotFoundError:  # evicted meanwhile
            return None
        finally:
            copy.close()

    # -- what downloads add -----------------------------------------------------

    def stage(self) -> str:
        """A new local staging path, for a download to write."""
        return self.blobs.staging_path()

    def discard(self, staging: str) -> None:
        self.blobs.discard(staging)

    async def commit(self, staging: str, key: str, size: int) -> None:
        """Keep a verified staging file as ``key``; StorageUnavailable leaves the staging file.

        The index learns of it after the bytes are durable; if it cannot be
        told, the bytes stay and the next start-up scan adds them.
        """
        await self.blobs.commit(staging, key)
        try:
            total = await self.index.add(key, size, self.clock.seconds())
        except StoreUnavailable as exc:
            log.error(
                "Kept {key}, but could not record it in the index: {error}", key=key, error=exc
            )
            return
        self._learn(key, size)
        if self.max_size is not None and total > self.max_size:
            self.eviction.soon()

    async def keep_small(self, key: str, data: bytes) -> None:
        """Keep a checked small file (a ``.metadata``, a provenance); a failure is logged.

        The bytes were served anyway: keeping them only saves the next fetch.
        """
        staging = self.stage()
        try:
            await deferToThread(_write, staging, data)
            await self.commit(staging, key, len(data))
        except (OSError, StorageUnavailable) as exc:
            self.discard(staging)
            log.error("Could not keep {key}: {error}", key=key, error=exc)

    # -- the view, the scan and eviction ----------------------------------------

    def _learn(self, key: str, size: int | None) -> None:
        """What this process found out about a key (None: not held), into the view."""
        if size is None:
            self._view.pop(key, None)
            self._stamped.pop(key, None)
        else:
            self._view[key] = size
        if self._learnt is not None:
            self._learnt[key] = size

    async def _read_view(self) -> None:
        """Replace the view by the index's keys, keeping what was learnt while they came."""
        self._learnt = {}
        try:
            view = await self.index.held()
        finally:
            learnt, self._learnt = self._learnt, None
        for key, size in learnt.items():
            if size is None:
                view.pop(key, None)
            else:
                view[key] = size
        self._view = view
        self._stamped = {key: when for key, when in self._stamped.items() if key in view}

    async def _seed(self) -> None:
        """Add the blobs the index does not know of (one scan of the blob store)."""
        found = [blob for blob in await self.blobs.list_blobs() if blob.key not in self._view]
        if found:
            await self.index.seed([(blob.key, blob.size, blob.mtime) for blob in found])
            for blob in found:
                self._view.setdefault(blob.key, blob.size)
            log.info(
                "Proxy cache: {count} files found in storage added to its index", count=len(found)
            )
        self._seeded = True

    def _refresh_soon(self) -> None:
        """Read the view again, then evict if the total is over the bound."""
        d = ensureDeferred(self._read_view())
        d.addCallback(lambda _: self.eviction.soon())
        d.addErrback(logged("Could not read the proxy cache's index"))

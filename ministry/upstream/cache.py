"""The proxied files kept on disk: which are held, their sizes, and LRU eviction.

Layout. ``<data-dir>/upstream/files/`` is a blob store of its own holding
only proxied bytes, at ``FileRecord.blob_key`` (a wheel's PEP 658 metadata at
``<blob_key>.metadata`` beside it). A root apart from the uploads' means
eviction can never touch a private upload, even one with the same bytes,
and the cache's size is exactly what lies under it.

Is a file held? The disk says, when asked (:meth:`FileCache.find`): one
``stat`` of the file's known path; nothing is ever listed on a read path.
So every process sharing the data directory serves what any of them fetched.
Last access (for LRU) is the blob's mtime, bumped when a held file is used
(at most every ``STAMP_INTERVAL`` per file and process, in a thread), so
every process's hits count. An in-memory index (key -> size, last use),
built by one scan at start-up, kept up to date by this process's downloads
and hits, and rebuilt by every eviction run (a scan in a thread), gives
sizes, the cache total and the offline listing without touching the disk.

Bytes arrive through :mod:`ministry.upstream.downloads`, which stages,
verifies and then commits them here; this module never talks to an upstream.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass

from twisted.internet.defer import ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from ministry.core.errors import NotFound
from ministry.core.models import METADATA_SUFFIX, FileRecord
from ministry.core.names import parse_filename
from ministry.stores.blobs import FilesystemBlobStore

log = Logger()

#: How often a held file's mtime is bumped, at most, per file and process.
STAMP_INTERVAL = 600.0
#: Eviction brings the cache down to this fraction of its bound, so that it
#: does not run again after every download once the cache is full.
LOW_WATER = 0.9
#: How often the cache is rescanned (and evicted) for what other processes did.
RESCAN_INTERVAL = 600.0


@dataclass(frozen=True)
class Held:
    """A file the cache holds: where it is and how big it is."""

    path: str
    size: int


@dataclass
class _Entry:
    size: int
    used: float  # last access, clock seconds
    stamped: float  # when ``used`` was last written to the blob's mtime


def _scan(root: str) -> dict[str, tuple[int, float]]:
    """Every blob under ``root`` (staging excluded): key -> (size, mtime)."""
    found = {}
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        for name in names:
            path = os.path.join(directory, name)
            with contextlib.suppress(FileNotFoundError):
                status = os.stat(path)
                found[os.path.relpath(path, root).replace(os.sep, "/")] = (
                    status.st_size,
                    status.st_mtime,
                )
    return found


def _stamp(path: str) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


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
        self, blobs: FilesystemBlobStore, *, max_size: int | None, clock: IReactorTime
    ) -> None:
        self.blobs = blobs
        self.max_size = max_size
        self.clock = clock
        self._index: dict[str, _Entry] = {}
        self._evicting = False
        self._rescan: LoopingCall | None = None
        #: Bytes of held files and metadata, as far as this process knows.
        self.cache_bytes = 0
        #: Client downloads served from the cache, and fetched from upstream.
        self.hits = 0
        self.misses = 0
        self.evicted = 0

    @property
    def hit_rate(self) -> float | None:
        """Share of client downloads served from the cache (None before any)."""
        total = self.hits + self.misses
        return self.hits / total if total else None

    @property
    def cached_files(self) -> int:
        return len(self._index)

    async def start(self) -> None:
        """Read what is held (one scan, in a thread); start the periodic rescan."""
        self._merge(await deferToThread(_scan, self.blobs.root), self.clock.seconds())
        if self.max_size is not None:
            self._rescan = LoopingCall(self._evict_soon)
            self._rescan.clock = self.clock
            self._rescan.start(RESCAN_INTERVAL, now=self.cache_bytes > self.max_size)

    def stop(self) -> None:
        if self._rescan is not None and self._rescan.running:
            self._rescan.stop()
        self._rescan = None

    # -- what is held -----------------------------------------------------------

    def find(self, record: FileRecord, *, served: bool) -> Held | None:
        """The held file, or None; ``served``: a client gets it (a hit, for the counters)."""
        path = self.blobs.local_path(record.blob_key)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            return None
        if served:
            self.hits += 1
        self._used(record.blob_key, size, path)
        return Held(path, size)

    def missed(self) -> None:
        """A client download had to go to the upstream."""
        self.misses += 1

    def as_served(self, record: FileRecord, *, held_only: bool) -> FileRecord | None:
        """The record as a page should show it, or None to leave it out.

        The held size replaces an unknown one. ``held_only`` (offline, or
        the upstream failing): only held files are listed, and only held
        metadata is offered, since nothing else could be served.
        """
        entry = self._index.get(record.blob_key)
        if held_only and entry is None:
            return None
        if entry is not None and not record.size:
            record = record.with_changes(size=entry.size)
        if (
            held_only
            and record.serves_metadata
            and record.blob_key + METADATA_SUFFIX not in self._index
        ):
            record = record.with_changes(metadata_sha256=None)
        return record

    async def wheel_metadata(self, record: FileRecord) -> bytes:
        """The core metadata inside a held wheel (read in a thread); NotFound if not held."""
        held = self.find(record, served=False)
        if held is None:
            raise NotFound(f"{record.filename} is not cached")
        return await deferToThread(_wheel_metadata, held.path, record.filename)

    async def metadata(self, record: FileRecord) -> bytes | None:
        """The held ``.metadata`` of a wheel if it matches its page's sha256, else None."""
        key = record.blob_key + METADATA_SUFFIX
        path = self.blobs.local_path(key)
        try:
            data = await deferToThread(_read, path)
        except FileNotFoundError:
            return None
        # Checked on every read (it is small): the page's hash is what was advertised.
        if hashlib.sha256(data).hexdigest() != record.metadata_sha256:
            log.warn("Cached {key} is not what its page describes; fetching it again", key=key)
            return None
        self._used(key, len(data), path)
        return data

    # -- what downloads add -----------------------------------------------------

    def stage(self) -> str:
        """A new staging path on the cache's filesystem, for a download to write."""
        return self.blobs.staging_path()

    def discard(self, staging: str) -> None:
        self.blobs.discard(staging)

    async def commit(self, staging: str, key: str, size: int) -> None:
        """Keep a verified staging file as ``key``; raises OSError (the staging file stays)."""
        await self.blobs.commit(staging, key)
        self._added(key, size)

    async def keep_metadata(self, record: FileRecord, data: bytes) -> None:
        """Keep a verified ``.metadata``; a failure is logged (the bytes were served anyway)."""
        key = record.blob_key + METADATA_SUFFIX
        staging = self.stage()
        try:
            await deferToThread(_write, staging, data)
            await self.commit(staging, key, len(data))
        except OSError as exc:
            self.discard(staging)
            log.error("Could not keep {key}: {error}", key=key, error=exc)

    # -- the index and eviction -------------------------------------------------

    def _used(self, key: str, size: int, path: str) -> None:
        now = self.clock.seconds()
        entry = self._index.get(key)
        if entry is None:  # cached by another process sharing the directory
            entry = self._index[key] = _Entry(size, now, 0.0)
            self.cache_bytes += size
        entry.used = now
        if now - entry.stamped >= STAMP_INTERVAL:
            entry.stamped = now
            deferToThread(_stamp, path)

    def _added(self, key: str, size: int) -> None:
        now = self.clock.seconds()
        old = self._index.get(key)
        self.cache_bytes += size - (old.size if old else 0)
        self._index[key] = _Entry(size, now, now)
        if self.max_size is not None and self.cache_bytes > self.max_size:
            self._evict_soon()

    def _evict_soon(self) -> None:
        """Start an eviction run; its failure is logged (and never stops the rescans)."""
        ensureDeferred(self._evict()).addErrback(
            lambda failure: log.failure("Cache eviction failed", failure)
        )

    def _merge(self, scanned: dict[str, tuple[int, float]], started: float) -> None:
        """Replace the index by a scan, keeping what was added while it ran."""
        index = {}
        for key, (size, mtime) in scanned.items():
            old = self._index.get(key)
            used = max(mtime, old.used) if old else mtime
            index[key] = _Entry(size, used, max(mtime, old.stamped) if old else mtime)
        for key, entry in self._index.items():
            if key not in index and entry.used >= started:
                index[key] = entry
        self._index = index
        self.cache_bytes = sum(entry.size for entry in index.values())

    async def _evict(self) -> None:
        """Rescan, then delete least recently used files until under the low-water mark."""
        if self._evicting or self.max_size is None:
            return
        self._evicting = True
        try:
            started = self.clock.seconds()
            self._merge(await deferToThread(_scan, self.blobs.root), started)
            if self.cache_bytes <= self.max_size:
                return
            target = self.max_size * LOW_WATER
            freed = 0
            for key, entry in sorted(self._index.items(), key=lambda item: item[1].used):
                if self.cache_bytes <= target:
                    break
                await self.blobs.delete(key)
                if self._index.pop(key, None) is not None:
                    self.cache_bytes -= entry.size
                    freed += entry.size
                    self.evicted += 1
            log.info(
                "Evicted {bytes} bytes of cached upstream files; {size} bytes remain",
                bytes=freed,
                size=self.cache_bytes,
            )
        finally:
            self._evicting = False

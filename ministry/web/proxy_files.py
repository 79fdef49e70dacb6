"""The proxy's file cache: upstream files streamed to clients and kept.

Layout. ``<data-dir>/upstream/files/`` is a blob store of its own holding
only proxied bytes, at ``FileRecord.blob_key`` (a wheel's PEP 658 metadata at
``<blob_key>.metadata`` beside it). A root apart from the uploads' means
eviction can never touch a private upload, even one with the same bytes,
and the cache's size is exactly what lies under it.

Is a file cached? The disk says, at serve time: one ``stat`` of the file's
known path, then the same ``open`` a hosted file costs; nothing is ever
listed on a read path. So every process sharing the data directory serves
what any of them fetched. Last access (for LRU) is the blob's mtime, bumped
when a cached file is served (at most every ``STAMP_INTERVAL`` per file and
process, in a thread), so every process's hits count. An in-memory index
(key -> size, last use), built by one scan at start-up, kept up to date by
this process's downloads and hits, and rebuilt by every eviction run (a scan
in a thread), gives sizes, the cache total and the offline listing without
touching the disk.

First download. The upstream body is written to a staging file as it
arrives while its sha256 is computed; every client asking for the file
meanwhile follows that staging file from its own offset (so one upstream
fetch serves all of them, memory stays bounded whatever the file's size,
and the first byte goes out as soon as it arrives). The last byte is held
back until the sha256 has been checked: on a mismatch (or a truncated or
failed transfer) the staging file is dropped and every follower's connection
is aborted, so a client never sees a complete, wrong file. A verified file
is committed (fsync, rename) into the store. A Range request for a file not
cached yet is answered with the whole file (RFC 9110 allows it), which is
what caches it; a HEAD does not fetch anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from ministry.core.errors import NotFound
from ministry.core.models import FileRecord
from ministry.core.upstream_pages import UpstreamFile
from ministry.stores.blobs import FilesystemBlobStore
from ministry.upstream.client import UpstreamClient, UpstreamError, UpstreamUnavailable
from ministry.web.http.files import IMMUTABLE, SEND_DIRECTLY, Delivery, StoredFile, content_type_for
from ministry.web.http.rendered import etag_matches
from ministry.web.http.responses import refuse

log = Logger()

METADATA_SUFFIX = ".metadata"
#: Largest ``.metadata`` file fetched (the uploads' cap on core metadata).
METADATA_LIMIT = 16 * 1024**2
#: How often a cached file's mtime is bumped, at most, per file and process.
STAMP_INTERVAL = 600.0
#: Eviction brings the cache down to this fraction of its bound, so that it
#: does not run again after every download once the cache is full.
LOW_WATER = 0.9
#: How often the cache is rescanned (and evicted) for what other processes did.
RESCAN_INTERVAL = 600.0
_CHUNK = 64 * 1024


@dataclass
class _Entry:
    size: int
    used: float  # last access, epoch seconds
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


class ProxyFiles:
    """Serves, fetches, keeps and evicts the proxied files (see the module docstring)."""

    def __init__(
        self,
        client: UpstreamClient,
        blobs: FilesystemBlobStore,
        *,
        max_size: int | None,
        offline: bool,
        delivery: Delivery = SEND_DIRECTLY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.delivery = delivery
        self.blobs = blobs
        self.max_size = max_size
        self.offline = offline
        self.clock = clock
        #: Called with a project name when a file whose size its page did not
        #: give gets cached, so pages showing that size can be rebuilt.
        self.on_sized: Callable[[str], None] = lambda project: None
        self._index: dict[str, _Entry] = {}
        self._downloads: dict[str, _Download] = {}
        self._evicting = False
        self._rescan: LoopingCall | None = None
        #: Bytes of cached files and metadata, as far as this process knows.
        self.cache_bytes = 0
        #: File downloads served from the cache, and fetched from upstream.
        self.hits = 0
        self.misses = 0
        self.evicted = 0

    @property
    def hit_rate(self) -> float | None:
        """Share of file downloads served from the cache (None before any)."""
        total = self.hits + self.misses
        return self.hits / total if total else None

    @property
    def cached_files(self) -> int:
        return len(self._index)

    # -- service ----------------------------------------------------------------

    async def start(self) -> None:
        """Read what is cached (one scan, in a thread); start the periodic rescan."""
        self._merge(await deferToThread(_scan, self.blobs.root), self.clock())
        if self.max_size is not None:
            self._rescan = LoopingCall(self._evict_soon)
            self._rescan.start(RESCAN_INTERVAL, now=self.cache_bytes > self.max_size)

    def stop(self) -> None:
        if self._rescan is not None and self._rescan.running:
            self._rescan.stop()
        self._rescan = None

    # -- what the catalog asks --------------------------------------------------

    def as_served(self, record: FileRecord, *, held_only: bool) -> FileRecord | None:
        """The record as the page should show it, or None to leave it out.

        The cached size replaces an unknown one. ``held_only`` (offline, or
        the upstream failing): only cached files are listed, and only cached
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

    def resource(self, record: FileRecord, source: UpstreamFile) -> Resource:
        return ProxiedFile(self, record, source)

    async def metadata(self, record: FileRecord, source: UpstreamFile) -> bytes:
        """A proxied wheel's ``.metadata``, from the cache or fetched, checked and kept."""
        key = record.blob_key + METADATA_SUFFIX
        path = self.blobs.local_path(key)
        try:
            data = await deferToThread(_read, path)
        except FileNotFoundError:
            pass
        else:
            # Checked on every read (it is small): the page's hash is what was advertised.
            if hashlib.sha256(data).hexdigest() == record.metadata_sha256:
                self._used(key, len(data), path)
                return data
            log.warn("Cached {key} is not what its page describes; fetching it again", key=key)
        if self.offline or source.metadata_url is None:
            raise NotFound(f"No metadata of {record.filename} is cached or offered upstream.")
        try:
            data = await self.client.fetch_bytes(source.metadata_url, METADATA_LIMIT)
        except UpstreamError as exc:
            log.warn("Upstream metadata unavailable: {error}", error=exc)
            raise UpstreamUnavailable(f"Upstream metadata unavailable: {exc}") from None
        if hashlib.sha256(data).hexdigest() != record.metadata_sha256:
            log.error("{url}: sha256 differs from the page's; not kept", url=source.metadata_url)
            raise UpstreamUnavailable(
                f"The upstream's metadata for {record.filename} does not match the sha256 "
                "its page gives; nothing was kept."
            )
        staging = self.blobs.staging_path()
        try:
            await deferToThread(_write, staging, data)
            await self.blobs.commit(staging, key)
        except OSError as exc:
            self.blobs.discard(staging)
            log.error("Could not keep {key}: {error}", key=key, error=exc)
        else:
            self._added(key, len(data))
        return data

    # -- serving ----------------------------------------------------------------

    def cached_file(self, record: FileRecord, count: bool) -> StoredFile | None:
        """The cached file as a StoredFile, or None when it is not on disk."""
        path = self.blobs.local_path(record.blob_key)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            return None
        if count:
            self.hits += 1
        self._used(record.blob_key, size, path)
        return self.delivery.file(
            path,
            size,
            content_type_for(record.filename),
            _etag(record),
            record.upload_time,
        )

    def stream(self, request: IRequest, record: FileRecord, source: UpstreamFile) -> Any:
        """Serve a file not cached yet by following its (maybe new) download."""
        if self.offline:
            return refuse(request, NotFound(f"{record.filename} is not cached (offline)."))
        self.misses += 1
        download = self._downloads.get(record.blob_key)
        follower = _Follower(request)
        if download is None:
            download = self._downloads[record.blob_key] = _Download(self, record, source)
            download.attach(follower)
            ensureDeferred(download.run()).addErrback(
                lambda failure: log.failure("Proxy download failed", failure)
            )
        else:
            download.attach(follower)
        return NOT_DONE_YET

    async def fetch(self, record: FileRecord, source: UpstreamFile) -> int:
        """Make sure a file is cached, for the mirror: 0 if it already was, else its size.

        Joins the download a client may have started (one upstream fetch
        either way), with the same sha256 check; raises UpstreamError when
        the file could not be fetched, verified or kept.
        """
        if self.cached_file(record, count=False) is not None:
            return 0
        if self.offline:
            raise UpstreamError(f"{record.filename} is not cached (offline)")
        download = self._downloads.get(record.blob_key)
        if download is None:
            download = self._downloads[record.blob_key] = _Download(self, record, source)
            ensureDeferred(download.run()).addErrback(
                lambda failure: log.failure("Proxy download failed", failure)
            )
        await download.finished()
        if download.failure is not None:
            raise UpstreamError(download.failure)
        if self.cached_file(record, count=False) is None:
            raise UpstreamError(f"{record.filename} was fetched but could not be kept")
        return download.written

    # -- the index and eviction -------------------------------------------------

    def _used(self, key: str, size: int, path: str) -> None:
        now = self.clock()
        entry = self._index.get(key)
        if entry is None:  # cached by another process sharing the directory
            entry = self._index[key] = _Entry(size, now, 0.0)
            self.cache_bytes += size
        entry.used = now
        if now - entry.stamped >= STAMP_INTERVAL:
            entry.stamped = now
            deferToThread(_stamp, path)

    def _added(self, key: str, size: int) -> None:
        now = self.clock()
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
            started = self.clock()
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


def _etag(record: FileRecord) -> bytes:
    return f'"{record.sha256}"'.encode()


class ProxiedFile(Resource):
    """A proxied file: from the cache when it is there, else streamed from upstream."""

    isLeaf = True

    def __init__(self, files: ProxyFiles, record: FileRecord, source: UpstreamFile) -> None:
        super().__init__()
        self.files = files
        self.record = record
        self.source = source

    def render_GET(self, request: IRequest) -> Any:
        stored = self.files.cached_file(self.record, count=True)
        if stored is not None:
            return stored.render_GET(request)
        if_none_match = request.getHeader(b"if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, _etag(self.record)):
            request.setResponseCode(304)
            request.setHeader(b"etag", _etag(self.record))
            return b""
        return self.files.stream(request, self.record, self.source)

    def render_HEAD(self, request: IRequest) -> bytes:
        stored = self.files.cached_file(self.record, count=False)
        if stored is not None:
            return stored.render_HEAD(request)
        # Not fetched for a HEAD; no ranges until the file is cached.
        request.setHeader(b"content-type", content_type_for(self.record.filename))
        request.setHeader(b"etag", _etag(self.record))
        request.setHeader(b"accept-ranges", b"none")
        if self.record.size:
            request.setHeader(b"content-length", str(self.record.size).encode())
        return b""


class _Download:
    """One upstream file being fetched into a staging file, with its followers."""

    def __init__(self, files: ProxyFiles, record: FileRecord, source: UpstreamFile) -> None:
        self.files = files
        self.record = record
        self.source = source
        self.sha256 = hashlib.sha256()
        self.fd: int | None = None
        self.staging: str | None = None
        self.written = 0
        #: The length announced to followers: the upstream's Content-Length,
        #: else the page's size, else None (chunked).
        self.expected: int | None = None
        self.started = False  # the upstream's headers are in
        self.verified = False
        self.failure: str | None = None
        self.done = False
        self._waiting: list[_Follower] = []
        self.followers: set[_Follower] = set()
        self._watchers: list[Deferred[None]] = []

    def finished(self) -> Deferred[None]:
        """Fires when the download is over, kept or failed (see ``failure``)."""
        if self.done:
            return succeed(None)
        watcher: Deferred[None] = Deferred()
        self._watchers.append(watcher)
        return watcher

    def attach(self, follower: _Follower) -> None:
        follower.download = self
        if self.failure is not None:
            follower.refuse(self.failure)
        elif self.started:
            follower.begin()
        else:
            self._waiting.append(follower)

    def detach(self, follower: _Follower) -> None:
        self.followers.discard(follower)
        if follower in self._waiting:
            self._waiting.remove(follower)
        self._close_if_unused()

    async def run(self) -> None:
        """Fetch, verify and keep the file; whatever goes wrong, no follower is left waiting."""
        try:
            await self._run()
        except BaseException as exc:
            if not self.done:
                self._fail(f"internal error: {exc!r}")
            raise

    async def _run(self) -> None:
        try:
            body = await self.files.client.open_file(self.source.url)
        except UpstreamError as exc:
            self._fail(str(exc))
            return
        page_size = self.record.size or None
        if body.length is not None and page_size is not None and body.length != page_size:
            body.abandon()
            self._fail(f"{body.url}: {body.length} bytes, but the page says {page_size}")
            return
        self.expected = body.length if body.length is not None else page_size
        try:
            self.staging = self.files.blobs.staging_path()
            self.fd = os.open(self.staging, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            body.abandon()
            self._fail(f"cannot stage {self.record.filename}: {exc}")
            return
        self.started = True
        waiting, self._waiting = self._waiting, []
        for follower in waiting:
            follower.begin()
        try:
            await body.read(self._received)
        except (UpstreamError, OSError) as exc:
            self._fail(str(exc))
            return
        if self.expected is not None and self.written != self.expected:
            self._fail(f"{body.url}: {self.written} bytes, {self.expected} announced")
            return
        if self.sha256.hexdigest() != self.record.sha256:
            self._fail(
                f"{body.url}: sha256 {self.sha256.hexdigest()} is not the page's "
                f"{self.record.sha256}"
            )
            return
        self.verified = True
        for follower in list(self.followers):
            follower.pump()
        await self._commit()

    def _received(self, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.sha256.update(data)
        self.written += len(data)
        if self.expected is not None and self.written > self.expected:
            raise UpstreamError(f"{self.source.url}: longer than the {self.expected} announced")
        for follower in list(self.followers):
            follower.pump()

    async def _commit(self) -> None:
        assert self.staging is not None
        try:
            await self.files.blobs.commit(self.staging, self.record.blob_key)
        except OSError as exc:
            self.files.blobs.discard(self.staging)
            log.error("Could not keep {file}: {error}", file=self.record.filename, error=exc)
        else:
            self.files._added(self.record.blob_key, self.written)
            if not self.record.size:
                self.files.on_sized(self.record.project)
            log.info("Cached {file} from upstream", file=self.record.filename)
        finally:
            self._finish()

    def _fail(self, reason: str) -> None:
        self.failure = reason
        log.warn(
            "Upstream file {file} not served or kept: {reason}",
            file=self.record.filename,
            reason=reason,
        )
        waiting, self._waiting = self._waiting, []
        for follower in waiting:
            follower.refuse(reason)
        for follower in list(self.followers):
            follower.abort()
        if self.staging is not None:
            self.files.blobs.discard(self.staging)
        self._finish()

    def _finish(self) -> None:
        self.done = True
        if self.files._downloads.get(self.record.blob_key) is self:
            del self.files._downloads[self.record.blob_key]
        self._close_if_unused()
        watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            watcher.callback(None)

    def _close_if_unused(self) -> None:
        if self.done and not self.followers and self.fd is not None:
            os.close(self.fd)
            self.fd = None


@implementer(IPushProducer)
class _Follower:
    """One client reading a download as it grows, from its staging file."""

    def __init__(self, request: IRequest) -> None:
        self.request = request
        self.download: _Download | None = None
        self.offset = 0
        self.paused = False
        self.finished = False
        request.notifyFinish().addErrback(lambda _: self._detach())

    def begin(self) -> None:
        """The upstream's headers are in: send ours and whatever bytes there are."""
        download = self.download
        if self.finished or download is None:
            return
        request = self.request
        request.setHeader(b"content-type", content_type_for(download.record.filename))
        request.setHeader(b"etag", _etag(download.record))
        request.setHeader(b"cache-control", IMMUTABLE)
        request.setHeader(b"accept-ranges", b"none")
        if download.expected is not None:
            request.setHeader(b"content-length", str(download.expected).encode())
        download.followers.add(self)
        request.registerProducer(self, True)
        self.pump()

    def refuse(self, reason: str) -> None:
        """The download failed before any header went out: a 502 with the reason."""
        if self.finished:
            return
        self.finished = True
        error = UpstreamUnavailable(f"The upstream could not provide this file: {reason}")
        self.request.write(refuse(self.request, error))
        self.request.finish()

    def pump(self) -> None:
        """Send what the download has, up to its last byte once it is verified."""
        download = self.download
        while download is not None and not self.paused and not self.finished:
            assert download.fd is not None
            end = download.written if download.verified else download.written - 1
            if self.offset >= end:
                if download.verified:
                    self._complete()
                return
            chunk = os.pread(download.fd, min(_CHUNK, end - self.offset), self.offset)
            self.offset += len(chunk)
            self.request.write(chunk)

    def abort(self) -> None:
        """The download failed after our headers went out: cut the connection."""
        if self.finished:
            return
        self._detach()
        self.request.transport.abortConnection()

    def _complete(self) -> None:
        self._detach()
        self.request.unregisterProducer()
        self.request.finish()

    def _detach(self) -> None:
        self.finished = True
        if self.download is not None:
            self.download.detach(self)

    # IPushProducer, for the client's connection

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.pump()

    def stopProducing(self) -> None:
        self._detach()

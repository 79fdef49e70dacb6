"""Verified downloads of upstream files into the cache, followed while they grow.

The upstream body is written to a staging file as it arrives while its
sha256 is computed. Whoever wants the file meanwhile joins the one download
in flight for it (so one upstream fetch serves everyone): the mirror waits
for the end (:meth:`Downloads.fetch`), and a client's response follows the
staging file from its own offset (:meth:`Downloads.follow`, with a
:class:`Follower` from ``ministry.web.proxied_files``), so memory stays
bounded whatever the file's size and the first byte goes out as soon as it
arrives. The last byte is held back until the sha256 has been checked: on a
mismatch (or a truncated or failed transfer) the staging file is dropped and
every follower is aborted, so nobody ever sees a complete, wrong file. A
verified file is committed into the :class:`FileCache`'s blob store (a
directory or a bucket), and only then recorded in its index.

Wheels' PEP 658 ``.metadata`` files are small: fetched whole, checked
against the page's hash, handed to the client, and kept beside the wheel
meanwhile (:meth:`Downloads.metadata`): keeping means fsync, rename and a
directory fsync, tens of milliseconds on a busy disk, once per wheel of a
cold install, and the bytes in hand need not wait for that.
So are PEP 740 provenances the page offers, fetched as soon as their file
is kept (:meth:`Downloads.provenance`), so that the cache (and an offline
index) can serve them too.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from contextlib import suppress
from typing import Protocol

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from ministry.core import signatures
from ministry.core.attestations import check_provenance
from ministry.core.errors import BadRequest, MinistryError, NotFound, StorageUnavailable
from ministry.core.models import METADATA_SUFFIX, PROVENANCE_SUFFIX, FileRecord
from ministry.core.upstream_pages import UpstreamFile
from ministry.upstream.body import UpstreamError
from ministry.upstream.cache import FileCache
from ministry.upstream.client import UpstreamClient, UpstreamUnavailable

log = Logger()

#: Largest ``.metadata`` file fetched (the uploads' cap on core metadata).
METADATA_LIMIT = 16 * 1024**2
#: Largest upstream provenance fetched (one attestation is some 10 kB).
PROVENANCE_LIMIT = 1024**2


class Follower(Protocol):
    """Someone reading a download as it grows (a client's response, in the web layer)."""

    def begin(self, download: Download) -> None:
        """The upstream's headers are in: ``download.expected`` is known, bytes follow."""

    def refuse(self, reason: str) -> None:
        """The download failed before :meth:`begin`."""

    def pump(self) -> None:
        """More bytes are readable, or the download was verified (all are)."""

    def abort(self) -> None:
        """The download failed after :meth:`begin`: what was sent must be cut off."""


class Downloads:
    """The downloads in flight, one per file, and what joins them."""

    def __init__(self, client: UpstreamClient, cache: FileCache, *, offline: bool) -> None:
        self.client = client
        self.cache = cache
        self.offline = offline
        #: Called with a project name when a file whose size its page did not
        #: give gets cached, so pages showing that size can be rebuilt.
        self.on_sized: Callable[[str], None] = lambda project: None
        self._in_flight: dict[str, Download] = {}
        self._keeping: set[Deferred[None]] = set()

    def in_flight(self) -> int:
        """How many downloads, and keeps of small files already served, are going on now."""
        return len(self._in_flight) + len(self._keeping)

    def follow(self, record: FileRecord, source: UpstreamFile, follower: Follower) -> Download:
        """Have ``follower`` read the file's download (started if none is in flight).

        For a client asking for a file the cache does not hold (a miss);
        raises NotFound when offline, since nothing may be fetched.
        """
        if self.offline:
            raise NotFound(f"{record.filename} is not cached (offline).")
        self.cache.missed()
        download = self._in_flight.get(record.blob_key)
        if download is not None:
            download.attach(follower)
            return download
        download = self._in_flight[record.blob_key] = Download(self, record, source)
        download.attach(follower)  # before it runs: a quick upstream could finish at once
        self._run(download)
        return download

    async def fetch(self, record: FileRecord, source: UpstreamFile) -> int:
        """Make sure a file is cached, for the mirror: 0 if it already was, else its size.

        Joins the download a client may have started (one upstream fetch
        either way), with the same sha256 check; raises UpstreamError when
        the file could not be fetched, verified or kept.
        """
        if await self.cache.find(record, served=False) is not None:
            await self.keep_provenance(record, source)
            return 0
        if self.offline:
            raise UpstreamError(f"{record.filename} is not cached (offline)")
        download = self._in_flight.get(record.blob_key)
        if download is None:
            # The mirror logs a line per project with its count: none per file.
            download = Download(self, record, source, quiet=True)
            self._in_flight[record.blob_key] = download
            self._run(download)
        await download.finished()
        if download.failure is not None:
            raise UpstreamError(download.failure)
        if not download.kept:  # its commit said so: no need to ask the cache again
            raise UpstreamError(f"{record.filename} was fetched but could not be kept")
        return download.written

    async def metadata(self, record: FileRecord, source: UpstreamFile) -> bytes:
        """A proxied wheel's ``.metadata``, from the cache or fetched, checked and kept."""
        data = await self.cache.metadata(record)
        if data is not None:
            return data
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
        self._keep_meanwhile(record.blob_key + METADATA_SUFFIX, data)
        return data

    async def provenance(self, record: FileRecord, source: UpstreamFile) -> bytes:
        """A proxied file's PEP 740 provenance, from the cache or fetched, checked and kept.

        The page gives no hash for it, so it is checked instead: PEP 740's
        shape, about this file's name and sha256 (else nothing is kept and
        the answer is a 502), and its signatures, offline, with the outcome
        logged (the upstream checked them against its Trusted Publishers).
        """
        data = await self.cache.provenance(record)
        if data is not None:
            return data
        if self.offline or source.provenance_url is None:
            raise NotFound(f"No provenance of {record.filename} is cached or offered upstream.")
        try:
            data = await self.client.fetch_bytes(source.provenance_url, PROVENANCE_LIMIT)
            check_provenance(data, record.filename, record.sha256)
        except (UpstreamError, BadRequest) as exc:
            log.warn(
                "Upstream provenance of {file} not kept: {error}", file=record.filename, error=exc
            )
            raise UpstreamUnavailable(
                f"The upstream's provenance of {record.filename} is unusable: {exc}"
            ) from None
        checked = await deferToThread(signatures.check, data, record.filename, record.sha256)
        log.info(
            "Kept the upstream provenance of {file}: {outcome}",
            file=record.filename,
            outcome=f"signed by {checked.signer}" if checked.signer else checked.problem,
        )
        await self.cache.keep_small(record.blob_key + PROVENANCE_SUFFIX, data)
        return data

    async def keep_provenance(self, record: FileRecord, source: UpstreamFile) -> None:
        """Fetch and keep a file's upstream provenance, if offered; a failure is logged only."""
        if source.provenance_url is None or self.offline:
            return
        with suppress(MinistryError):  # logged; the file itself is kept either way
            await self.provenance(record, source)

    def _keep_meanwhile(self, key: str, data: bytes) -> None:
        """Keep checked small bytes without making whoever asked wait for the disk.

        ``keep_small`` logs a failure; the bytes were served either way.
        """
        keeping = ensureDeferred(self.cache.keep_small(key, data))
        self._keeping.add(keeping)
        keeping.addErrback(lambda failure: log.failure("Could not keep {key}", failure, key=key))
        keeping.addBoth(lambda _: self._keeping.discard(keeping))

    @staticmethod
    def _run(download: Download) -> None:
        ensureDeferred(download.run()).addErrback(
            lambda failure: log.failure("Proxy download failed", failure)
        )

    def _ended(self, download: Download) -> None:
        if self._in_flight.get(download.record.blob_key) is download:
            del self._in_flight[download.record.blob_key]


class Download:
    """One upstream file being fetched into a staging file, with its followers."""

    def __init__(
        self, downloads: Downloads, record: FileRecord, source: UpstreamFile, *, quiet: bool = False
    ) -> None:
        self.downloads = downloads
        #: No "Cached" line when kept (failures are always logged): a mirror
        #: of small files spent a tenth of its daemon's time writing those.
        self.quiet = quiet
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
        #: Committed into the cache (False: failed, or not yet).
        self.kept = False
        self.failure: str | None = None
        self.done = False
        self._waiting: list[Follower] = []
        self._followers: set[Follower] = set()
        self._watchers: list[Deferred[None]] = []

    def finished(self) -> Deferred[None]:
        """Fires when the download is over, kept or failed (see ``failure``)."""
        if self.done:
            return succeed(None)
        watcher: Deferred[None] = Deferred()
        self._watchers.append(watcher)
        return watcher

    def attach(self, follower: Follower) -> None:
        if self.failure is not None:
            follower.refuse(self.failure)
        elif self.started:
            self._followers.add(follower)
            follower.begin(self)
        else:
            self._waiting.append(follower)

    def detach(self, follower: Follower) -> None:
        self._followers.discard(follower)
        if follower in self._waiting:
            self._waiting.remove(follower)
        self._close_if_unused()

    def readable(self) -> int:
        """How far followers may read: every byte once verified, else all but the last."""
        return self.written if self.verified else max(self.written - 1, 0)

    def read(self, offset: int, size: int) -> bytes:
        """Bytes of the staging file from ``offset`` (for a follower still attached)."""
        assert self.fd is not None
        return os.pread(self.fd, size, offset)

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
            body = await self.downloads.client.open_file(self.source.url)
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
            self.staging = self.downloads.cache.stage()
            self.fd = os.open(self.staging, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            body.abandon()
            self._fail(f"cannot stage {self.record.filename}: {exc}")
            return
        self.started = True
        waiting, self._waiting = self._waiting, []
        for follower in waiting:
            self._followers.add(follower)
            follower.begin(self)
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
        self._pump()
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
        self._pump()

    def _pump(self) -> None:
        for follower in list(self._followers):
            follower.pump()

    async def _commit(self) -> None:
        assert self.staging is not None
        try:
            await self.downloads.cache.commit(self.staging, self.record.blob_key, self.written)
        except (OSError, StorageUnavailable) as exc:
            self.downloads.cache.discard(self.staging)
            log.error("Could not keep {file}: {error}", file=self.record.filename, error=exc)
        else:
            self.kept = True
            if not self.record.size:
                self.downloads.on_sized(self.record.project)
            if not self.quiet:
                log.info("Cached {file} from upstream", file=self.record.filename)
            await self.downloads.keep_provenance(self.record, self.source)
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
        for follower in list(self._followers):
            follower.abort()
        if self.staging is not None:
            self.downloads.cache.discard(self.staging)
        self._finish()

    def _finish(self) -> None:
        self.done = True
        self.downloads._ended(self)
        self._close_if_unused()
        watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            watcher.callback(None)

    def _close_if_unused(self) -> None:
        if self.done and not self._followers and self.fd is not None:
            os.close(self.fd)
            self.fd = None

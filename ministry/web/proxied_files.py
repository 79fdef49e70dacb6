"""Proxied files sent to clients: from the cache when held, else as they download.

The cache, the downloads and their sha256 checks are upstream-side
(:mod:`ministry.upstream.cache`, :mod:`ministry.upstream.downloads`); this
module only turns them into responses. Whether a file is held is a question
for the cache's index (shared by every daemon), so the answer comes once it
replies. A held file goes out as any stored file does, by the storage's
``Delivery`` (a directory's: ranges, validators, X-Accel-Redirect; a
bucket's: streamed or redirected). A file not held yet is streamed by a :class:`_Follower`
of its download, which never sends the last byte before the download is
verified and cuts the connection if it fails after the headers went out,
so a client never sees a complete, wrong file. A Range request for a file
not held is answered with the whole file (RFC 9110 allows it), which is what
caches it; a HEAD does not fetch anything.
"""

from __future__ import annotations

from twisted.internet.defer import ensureDeferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from ministry.core.errors import MinistryError, NotFound
from ministry.core.models import FileRecord
from ministry.core.upstream_pages import UpstreamFile
from ministry.upstream.client import UpstreamUnavailable
from ministry.upstream.downloads import Download
from ministry.upstream.pages import UpstreamPages
from ministry.web.http.files import IMMUTABLE, Delivery, content_type_for, sha256_etag
from ministry.web.http.rendered import etag_matches
from ministry.web.http.responses import refuse

log = Logger()

_CHUNK = 64 * 1024


class ProxiedFile(Resource):
    """A proxied file: from the cache when it is there, else streamed from upstream.

    Whether it is held is asked of the cache's index (a Deferred), so both
    methods answer later: with the held file's resource (as any stored file
    is sent), or with :class:`_NotHeld`'s answer.
    """

    isLeaf = True

    def __init__(
        self, proxy: UpstreamPages, delivery: Delivery, record: FileRecord, source: UpstreamFile
    ) -> None:
        super().__init__()
        self.cache = proxy.cache
        self.downloads = proxy.downloads
        self.delivery = delivery
        self.record = record
        self.source = source

    def render_GET(self, request: IRequest) -> int:
        return self._answer_later(request, served=True)

    def render_HEAD(self, request: IRequest) -> int:
        return self._answer_later(request, served=False)

    def _answer_later(self, request: IRequest, served: bool) -> int:
        gone: list[bool] = []
        request.notifyFinish().addBoth(lambda _: gone.append(True))
        d = ensureDeferred(self._resource(served))
        d.addErrback(_refusal)
        d.addCallback(lambda resource: None if gone else request.render(resource))
        d.addErrback(lambda failure: _failed(request, failure, gone))
        return NOT_DONE_YET

    async def _resource(self, served: bool) -> Resource:
        held = await self.cache.find(self.record, served=served)
        if held is None:
            return _NotHeld(self)
        record = self.record
        content_type = content_type_for(record.filename)
        etag = sha256_etag(record.sha256)
        return self.delivery.file(
            self.cache.blobs, record.blob_key, held.size, content_type, etag, record.upload_time
        )


def _refusal(failure: Failure) -> Resource:
    """The answer when the cache could not say: a 503 if its index or storage is down."""
    if failure.check(MinistryError):
        return _Refusal(failure.value)
    log.failure("Could not look for a proxied file in the cache", failure)
    return _Refusal(MinistryError("Internal error while looking for the file.", 500))


def _failed(request: IRequest, failure: Failure, gone: list[bool]) -> None:
    """Sending failed: finish the request anyway, or it would hang until the client gives up.

    A 500 if nothing went out yet; after the headers, the connection is cut,
    so that the client never takes a cut-short body for the whole file.
    """
    if gone:  # the client left, or the response was complete after all
        log.failure("Could not send a proxied file", failure)
    elif request.startedWriting:
        log.failure("Could not send a proxied file; cutting the connection", failure)
        request.transport.abortConnection()
    else:
        request.processingFailed(failure)  # logs it


class _Refusal(Resource):
    isLeaf = True

    def __init__(self, error: MinistryError) -> None:
        super().__init__()
        self.error = error

    def render(self, request: IRequest) -> bytes:
        return refuse(request, self.error)


class _NotHeld(Resource):
    """A file the cache does not hold: a GET follows its download, a HEAD fetches nothing."""

    isLeaf = True

    def __init__(self, file: ProxiedFile) -> None:
        super().__init__()
        self.file = file

    def render_GET(self, request: IRequest) -> bytes | int:
        etag = sha256_etag(self.file.record.sha256)
        if_none_match = request.getHeader(b"if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, etag):
            request.setResponseCode(304)
            request.setHeader(b"etag", etag)
            return b""
        follower = _Follower(request)
        try:
            follower.download = self.file.downloads.follow(
                self.file.record, self.file.source, follower
            )
        except NotFound as exc:
            return refuse(request, exc)
        return NOT_DONE_YET

    def render_HEAD(self, request: IRequest) -> bytes:
        # Not fetched for a HEAD; no ranges until the file is cached.
        record = self.file.record
        request.setHeader(b"content-type", content_type_for(record.filename))
        request.setHeader(b"etag", sha256_etag(record.sha256))
        request.setHeader(b"accept-ranges", b"none")
        if record.size:
            request.setHeader(b"content-length", str(record.size).encode())
        return b""


@implementer(IPushProducer)
class _Follower:
    """One client reading a download as it grows (a ``downloads.Follower``)."""

    def __init__(self, request: IRequest) -> None:
        self.request = request
        self.download: Download | None = None
        self.offset = 0
        self.paused = False
        self.finished = False
        request.notifyFinish().addErrback(lambda _: self._detach())

    def begin(self, download: Download) -> None:
        """The upstream's headers are in: send ours and whatever bytes there are."""
        self.download = download
        if self.finished:  # the client left while the upstream was asked
            download.detach(self)
            return
        request = self.request
        request.setHeader(b"content-type", content_type_for(download.record.filename))
        request.setHeader(b"etag", sha256_etag(download.record.sha256))
        request.setHeader(b"cache-control", IMMUTABLE)
        request.setHeader(b"accept-ranges", b"none")
        if download.expected is not None:
            request.setHeader(b"content-length", str(download.expected).encode())
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
            end = download.readable()
            if self.offset >= end:
                if download.verified:
                    self._complete()
                return
            chunk = download.read(self.offset, min(_CHUNK, end - self.offset))
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

"""Proxied files sent to clients: from the cache when held, else as they download.

The cache, the downloads and their sha256 checks are upstream-side
(:mod:`ministry.upstream.cache`, :mod:`ministry.upstream.downloads`); this
module only turns them into responses. A held file goes out as any stored
file does (:class:`~ministry.web.http.files.StoredFile`: ranges, validators,
X-Accel-Redirect). A file not held yet is streamed by a :class:`_Follower`
of its download, which never sends the last byte before the download is
verified and cuts the connection if it fails after the headers went out,
so a client never sees a complete, wrong file. A Range request for a file
not held is answered with the whole file (RFC 9110 allows it), which is what
caches it; a HEAD does not fetch anything.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from ministry.core.errors import NotFound
from ministry.core.models import FileRecord
from ministry.core.upstream_pages import UpstreamFile
from ministry.upstream.client import UpstreamUnavailable
from ministry.upstream.downloads import Download
from ministry.upstream.pages import UpstreamPages
from ministry.web.http.files import IMMUTABLE, Delivery, content_type_for, sha256_etag
from ministry.web.http.rendered import etag_matches
from ministry.web.http.responses import refuse

_CHUNK = 64 * 1024


class ProxiedFile(Resource):
    """A proxied file: from the cache when it is there, else streamed from upstream."""

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

    def _held(self, served: bool) -> Resource | None:
        held = self.cache.find(self.record, served=served)
        if held is None:
            return None
        record = self.record
        content_type = content_type_for(record.filename)
        etag = sha256_etag(record.sha256)
        return self.delivery.file(held.path, held.size, content_type, etag, record.upload_time)

    def render_GET(self, request: IRequest) -> Any:
        stored = self._held(served=True)
        if stored is not None:
            return stored.render_GET(request)
        etag = sha256_etag(self.record.sha256)
        if_none_match = request.getHeader(b"if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, etag):
            request.setResponseCode(304)
            request.setHeader(b"etag", etag)
            return b""
        follower = _Follower(request)
        try:
            follower.download = self.downloads.follow(self.record, self.source, follower)
        except NotFound as exc:
            return refuse(request, exc)
        return NOT_DONE_YET

    def render_HEAD(self, request: IRequest) -> bytes:
        stored = self._held(served=False)
        if stored is not None:
            return stored.render_HEAD(request)
        # Not fetched for a HEAD; no ranges until the file is cached.
        request.setHeader(b"content-type", content_type_for(self.record.filename))
        request.setHeader(b"etag", sha256_etag(self.record.sha256))
        request.setHeader(b"accept-ranges", b"none")
        if self.record.size:
            request.setHeader(b"content-length", str(self.record.size).encode())
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

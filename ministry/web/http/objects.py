"""Sending files kept in an S3 bucket: streamed through, or redirected to the object.

With ``--storage s3://...`` a file's bytes are an object in the bucket, and
two ways lead out of it:

- ``--storage-redirect``: a GET or HEAD answers ``302`` to a presigned URL of
  the object, so the bytes flow from the object store, not through the
  daemon (the counterpart of ``--x-accel-redirect``). The URL is valid for
  :data:`URL_LIFETIME` seconds, hence ``Cache-Control: no-store``: a cached
  redirect would outlive its signature. A matching ``If-None-Match`` is
  still a 304 here, since the ETag comes from the record.
- Otherwise the object is streamed through: the headers, validators, HEAD
  and Range handling are those of a file on disk
  (:class:`~ministry.web.http.files.ImmutableFile`), and the span is fetched
  with a ``Range`` from a presigned URL through an Agent on a persistent
  connection pool of our own (a presigned URL is signed locally, so no
  thread and no SDK is on this path). The body is relayed with
  backpressure: when the client's socket is full its connection pauses us,
  and we pause the connection to the object store, so memory stays bounded
  whatever the client's speed, and a client that leaves stops the download.

Every failure is bounded and says why. The object store must connect and
send its headers within ``timeout`` seconds (else 503 naming the storage),
and must not fall silent for as long mid-body while the client keeps up.
A missing object is a 404. Once our headers are out, a failure (the store
gone quiet, a connection lost, a short body) aborts the client's connection,
so that a client never takes a truncated body for a whole one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol as ByteProtocol
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import resource
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IRequest, IResponse
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from ministry.core.errors import MinistryError, NotFound, StorageUnavailable
from ministry.web.http.files import ImmutableFile
from ministry.web.http.rendered import etag_matches
from ministry.web.http.responses import refuse

#: Seconds a presigned URL stays valid: long enough to follow a redirect
#: (or to start a retry), short enough that a leaked one soon expires.
URL_LIFETIME = 300
#: Seconds the object store may take to connect and send its headers, and
#: may stay silent mid-body while the client keeps up.
TIMEOUT = 10.0
#: Idle connections to the object store kept for the next downloads.
POOLED_CONNECTIONS = 16


class PresignedStore(Protocol):
    """What delivery needs of a bucket's blob store (``ministry.stores.s3.S3BlobStore``)."""

    location: str

    def presigned_url(
        self, key: str, expires: int = URL_LIFETIME, content_type: str | None = None
    ) -> str:
        """A URL that GETs the object ``key`` without credentials, for ``expires`` seconds."""


class ObjectDelivery(Service):
    """The :class:`~ministry.web.http.files.Delivery` of a bucket, owning its connection pool.

    ``streams`` holds the bodies being relayed now; stopping the service
    cuts them and closes the pooled connections.
    """

    def __init__(
        self,
        agent: IAgent,
        clock: IReactorTime,
        *,
        redirect: bool,
        timeout: float = TIMEOUT,
        pool: HTTPConnectionPool | None = None,
    ) -> None:
        self.agent = agent
        self.clock = clock
        self.redirect = redirect
        self.timeout = timeout
        self.streams: set[_Stream] = set()
        self._pool = pool

    @classmethod
    def for_reactor(
        cls, reactor: Any, *, redirect: bool, timeout: float = TIMEOUT
    ) -> ObjectDelivery:
        """Delivery over an Agent with a persistent pool of its own on ``reactor``."""
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = POOLED_CONNECTIONS
        agent = Agent(reactor, connectTimeout=timeout, pool=pool)
        return cls(agent, reactor, redirect=redirect, timeout=timeout, pool=pool)

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        for stream in list(self.streams):
            stream.abort()
        return self._pool.closeCachedConnections() if self._pool is not None else succeed(None)

    def file(
        self,
        blobs: PresignedStore,
        key: str,
        size: int,
        content_type: bytes,
        etag: bytes,
        modified: datetime,
    ) -> resource.Resource:
        """The resource of the object ``key`` of ``blobs``: a redirect to it, or its stream."""
        if self.redirect:
            return RedirectedObject(blobs, key, etag, content_type.decode("latin-1"))
        return StreamedObject(self, blobs, key, size, content_type, etag, modified)

    def fetch(self, blobs: PresignedStore, key: str, span: tuple[int, int]) -> Deferred[IResponse]:
        """GET bytes ``span`` (first, last) of an object, with its headers within the timeout.

        Fails with StorageUnavailable naming the storage, or CancelledError
        when cancelled (the client left).
        """
        try:
            url = blobs.presigned_url(key, URL_LIFETIME)
        except StorageUnavailable as error:
            return fail(error)
        headers = Headers({b"range": [b"bytes=%d-%d" % span]})
        asking = self.agent.request(b"GET", url.encode("ascii"), headers)

        def silent(result: Any, timeout: float) -> Failure:
            return Failure(_unavailable(blobs, f"no answer within {timeout:g} s"))

        def failed(failure: Failure) -> Failure:
            if failure.check(StorageUnavailable, CancelledError):
                return failure
            return Failure(_unavailable(blobs, _reason(failure)))

        asking.addTimeout(self.timeout, self.clock, onTimeoutCancel=silent)
        return asking.addErrback(failed)


def _unavailable(blobs: PresignedStore, reason: str) -> StorageUnavailable:
    location = blobs.location
    return StorageUnavailable(f"File storage unavailable: cannot read from {location}: {reason}.")


def _reason(failure: Failure) -> str:
    """A one-line reason from an Agent's failure, which may wrap others (ResponseNeverReceived)."""
    inner = getattr(failure.value, "reasons", None)
    if inner:
        return _reason(inner[0])
    return failure.getErrorMessage().rstrip(".") or failure.type.__name__


class RedirectedObject(resource.Resource):
    """A file answered with a redirect to a presigned URL of its object."""

    isLeaf = True

    def __init__(self, blobs: PresignedStore, key: str, etag: bytes, content_type: str) -> None:
        super().__init__()
        self.blobs = blobs
        self.key = key
        self.etag = etag
        #: Signed into the URL, so the object store answers with the type this
        #: index serves, whatever type the object was stored with.
        self.content_type = content_type

    def render_GET(self, request: IRequest) -> bytes:
        request.setHeader(b"cache-control", b"no-store")
        if_none_match = request.getHeader(b"if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, self.etag):
            request.setResponseCode(304)
            request.setHeader(b"etag", self.etag)
            return b""
        try:
            url = self.blobs.presigned_url(self.key, URL_LIFETIME, self.content_type)
        except StorageUnavailable as error:
            return refuse(request, error)
        request.setResponseCode(302)
        request.setHeader(b"location", url.encode("ascii"))
        return b""

    render_HEAD = render_GET


class StreamedObject(ImmutableFile):
    """A file whose bytes are streamed from its object, with the answers of a file on disk."""

    def __init__(
        self,
        delivery: ObjectDelivery,
        blobs: PresignedStore,
        key: str,
        size: int,
        content_type: bytes,
        etag: bytes,
        modified: datetime,
    ) -> None:
        super().__init__(size, content_type, etag, modified)
        self.delivery = delivery
        self.blobs = blobs
        self.key = key

    def send(self, request: IRequest, span: tuple[int, int] | None) -> bytes | int:
        if self.size == 0:  # nothing to fetch, and no range of nothing to ask for
            request.setHeader(b"content-length", b"0")
            return b""
        _Stream(self, request, span).start()
        return NOT_DONE_YET


@implementer(IPushProducer)
class _Stream(ByteProtocol):
    """One response: the object's body relayed to a client, at the client's pace.

    The protocol of the object store's response body, and the producer the
    client's connection pauses and resumes.
    """

    def __init__(self, file: StreamedObject, request: IRequest, span: tuple[int, int] | None):
        self.file = file
        self.delivery = file.delivery
        self.request = request
        self.span = span
        self.expected = 0
        self.received = 0
        self.paused = False
        self.done = False
        self._reading = False  # the body is arriving (self.transport is its connection)
        self._cut = False
        self._asking: Deferred[IResponse] | None = None
        self._idle: IDelayedCall | None = None

    def start(self) -> None:
        """Ask the object store for the span; the answer goes out when it comes."""
        self.delivery.streams.add(self)
        self.request.notifyFinish().addErrback(lambda _: self.stopProducing())
        first, last = self.span or (0, self.file.size - 1)
        self.expected = last - first + 1
        self._asking = self.delivery.fetch(self.file.blobs, self.file.key, (first, last))
        self._asking.addCallbacks(self._answered, self._failed)

    def _answered(self, response: IResponse) -> None:
        self._asking = None
        if self.done:
            _discard(response)
            return
        if response.code not in (200, 206) or response.length != self.expected:
            _discard(response)
            self._refuse(self._refusal(response))
            return
        _, length = self.file.partial(self.request, self.span)
        self.request.setHeader(b"content-length", b"%d" % length)
        self.request.registerProducer(self, True)
        response.deliverBody(self)

    def _refusal(self, response: IResponse) -> MinistryError:
        location = self.file.blobs.location
        if response.code == 404:
            return NotFound(
                f"The file is listed but its bytes are missing from storage ({location})."
            )
        if response.code in (200, 206):
            return _unavailable(
                self.file.blobs,
                f"{response.length} bytes sent where {self.expected} were expected",
            )
        phrase = response.phrase.decode("latin-1", "replace")
        return _unavailable(self.file.blobs, f"it answered {response.code} {phrase}")

    def _failed(self, failure: Failure) -> None:
        self._asking = None
        if not self.done:  # else the client left, which cancelled the request
            self._refuse(failure.value)

    def _refuse(self, error: MinistryError) -> None:
        """Answer with an error before any of the body went out."""
        self._end()
        for name in (b"etag", b"last-modified", b"accept-ranges"):
            self.request.responseHeaders.removeHeader(name)
        self.request.write(refuse(self.request, error))
        self.request.finish()

    # -- the object store's body ------------------------------------------------

    def connectionMade(self) -> None:
        self._reading = True
        if self.paused:  # the client's socket filled before the body began
            self.transport.pauseProducing()
        else:
            self._arm()

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        if self.done:
            return
        self.request.write(data)
        if self._idle is not None:
            self._idle.reset(self.delivery.timeout)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._reading = False  # its connection is the pool's again, or closed
        if self.done:
            return
        if self.received == self.expected and reason.check(ResponseDone, PotentialDataLoss):
            self._end()
            self.request.unregisterProducer()
            self.request.finish()
        else:
            self.abort()

    def _arm(self) -> None:
        """Time the object store's silence, which only counts while we read."""
        self._disarm()
        self._idle = self.delivery.clock.callLater(self.delivery.timeout, self.abort)

    def _disarm(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self._idle = None

    # -- IPushProducer, for the client's connection -----------------------------

    def pauseProducing(self) -> None:
        self.paused = True
        if self._reading:
            self._disarm()
            self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        if self._reading and not self.done:
            self._arm()
            self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """The client left: stop the download."""
        self._end()

    # -- ending -----------------------------------------------------------------

    def abort(self) -> None:
        """Cut the client off: what it got so far must not pass for the whole file."""
        self._end()
        channel = self.request.channel
        if channel is not None and not self._cut:  # None: the client is gone already
            self._cut = True
            self.request.unregisterProducer()
            channel.transport.abortConnection()

    def _end(self) -> None:
        """Let go of what this response holds: the pending request, the body, the timer."""
        self.done = True
        self._disarm()
        self.delivery.streams.discard(self)
        if self._asking is not None:
            asking, self._asking = self._asking, None
            asking.cancel()
        if self._reading:
            self._reading = False
            self.transport.stopProducing()


def _discard(response: IResponse) -> None:
    """Read an unwanted (small, error) body to its end, so that its connection is reused."""
    response.deliverBody(ByteProtocol())

"""One streamed response: an object's body relayed from the bucket to a client.

The reading half of :mod:`ministry.web.http.objects`: the protocol that
receives the object store's response body is also the push producer the
client's connection pauses and resumes, so a slow client pauses the
download and memory stays bounded; a client that leaves stops it; a
failure after the headers went out aborts the client's connection.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IPushProducer
from twisted.internet.protocol import Protocol as ByteProtocol
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import UNKNOWN_LENGTH, IRequest, IResponse
from zope.interface import implementer

from ministry.core.errors import MinistryError, NotFound, StorageUnavailable
from ministry.stores.blobs import storage_unavailable
from ministry.web.http.responses import refuse

#: Bytes of an unwanted body (an error's) worth reading to keep its connection.
DRAINED = 64 * 1024


class StreamedFile(Protocol):
    """What a stream needs of its file (``objects.StreamedObject``): no import cycle."""

    delivery: Any  # the ObjectDelivery: fetch(), streams, clock, timeout
    blobs: Any  # the bucket's store: location
    key: str
    size: int

    def partial(self, request: IRequest, span: tuple[int, int] | None) -> tuple[int, int]:
        """The (offset, length) to send; a 206 with its Content-Range for a span."""


def unavailable_to_read(blobs: Any, reason: str) -> StorageUnavailable:
    """The 503 for a bucket that did not give an object's bytes, naming the bucket."""
    return storage_unavailable("read a file", blobs.location, reason)


@implementer(IPushProducer)
class ObjectStream(ByteProtocol):
    """One response: the object's body relayed to a client, at the client's pace.

    The protocol of the object store's response body, and the producer the
    client's connection pauses and resumes.
    """

    def __init__(self, file: StreamedFile, request: IRequest, span: tuple[int, int] | None):
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
            discard(response)
            return
        if response.code not in (200, 206) or response.length != self.expected:
            discard(response)
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
            return unavailable_to_read(
                self.file.blobs,
                f"{response.length} bytes sent where {self.expected} were expected",
            )
        phrase = response.phrase.decode("latin-1", "replace")
        return unavailable_to_read(self.file.blobs, f"it answered {response.code} {phrase}")

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


def discard(response: IResponse) -> None:
    """Be done with an unwanted body: read a small one, close the connection of any other.

    An error's few bytes are read to their end, so that the connection goes
    back to the pool; a body that ignored the Range or has the wrong length
    may be the whole object, gigabytes, so its connection is closed instead.
    """
    body = ByteProtocol()
    response.deliverBody(body)
    if response.length is UNKNOWN_LENGTH or response.length > DRAINED:
        body.transport.stopProducing()

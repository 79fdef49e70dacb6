"""Sending files kept in an S3 bucket: streamed through, or redirected to the object.

With ``--storage s3://...`` a file's bytes are an object in the bucket, and
two ways lead out of it:

- ``--storage-redirect``: a GET answers ``302`` to a presigned URL of the
  object, so the bytes flow from the object store, not through the daemon
  (the counterpart of ``--x-accel-redirect``). The URL is valid for
  :data:`URL_LIFETIME` seconds, hence ``Cache-Control: no-store``: a cached
  redirect would outlive its signature. A matching ``If-None-Match`` is
  still a 304 here, since the ETag comes from the record. A HEAD is
  answered here, as for a file on disk: the URL is signed for GET (the
  method is part of the signature), so a HEAD following it would get 403.
- Otherwise the object is streamed through: the headers, validators, HEAD
  and Range handling are those of a file on disk
  (:class:`~ministry.web.http.files.ImmutableFile`), and the span is fetched
  with a ``Range`` from a presigned URL through an Agent on a persistent
  connection pool of our own. The body is relayed with backpressure: when
  the client's socket is full its connection pauses us, and we pause the
  connection to the object store, so memory stays bounded whatever the
  client's speed, and a client that leaves stops the download.

Either way the URL is signed by the blob store on its own thread pool, as
signing may refresh credentials over the network (see
``S3BlobStore.presigned_url``); the rest is the reactor's.

Every failure is bounded and says why. The URL must be signed, and the
object store must connect and send its headers, within ``timeout`` seconds
(else 503 naming the storage), and must not fall silent for as long
mid-body while the client keeps up.
A missing object is a 404. Once our headers are out, a failure (the store
gone quiet, a connection lost, a short body) aborts the client's connection,
so that a client never takes a truncated body for a whole one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web import resource
from twisted.web.client import HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IRequest, IResponse
from twisted.web.server import NOT_DONE_YET

from ministry.core.errors import StorageUnavailable
from ministry.upstream.pool import pooled_agent
from ministry.web.http.files import ImmutableFile
from ministry.web.http.object_stream import ObjectStream, unavailable_to_read
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
    ) -> Deferred[str]:
        """A URL that GETs the object ``key`` without credentials, for ``expires`` seconds.

        Signed off the reactor; fails with StorageUnavailable naming the storage.
        """


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
        self.streams: set[ObjectStream] = set()
        self._pool = pool

    @classmethod
    def for_reactor(
        cls, reactor: Any, *, redirect: bool, timeout: float = TIMEOUT
    ) -> ObjectDelivery:
        """Delivery over an Agent with a persistent pool of its own on ``reactor``."""
        agent, pool = pooled_agent(reactor, timeout=timeout, per_host=POOLED_CONNECTIONS)
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
            return RedirectedObject(self, blobs, key, size, content_type, etag, modified)
        return StreamedObject(self, blobs, key, size, content_type, etag, modified)

    def sign(self, blobs: PresignedStore, key: str, content_type: str) -> Deferred[str]:
        """A presigned URL of the object ``key`` answered as ``content_type``, within the timeout.

        Fails as :meth:`fetch` does.
        """
        return self._bounded(blobs, blobs.presigned_url(key, URL_LIFETIME, content_type))

    def fetch(self, blobs: PresignedStore, key: str, span: tuple[int, int]) -> Deferred[IResponse]:
        """GET bytes ``span`` (first, last) of an object, with its headers within the timeout.

        Fails with StorageUnavailable naming the storage, or CancelledError
        when cancelled (the client left).
        """
        headers = Headers({b"range": [b"bytes=%d-%d" % span]})

        def ask(url: str) -> Deferred[IResponse]:
            return self.agent.request(b"GET", url.encode("ascii"), headers)

        return self._bounded(blobs, blobs.presigned_url(key, URL_LIFETIME).addCallback(ask))

    def _bounded(self, blobs: PresignedStore, asking: Deferred[Any]) -> Deferred[Any]:
        """``asking`` within the timeout, any failure but a cancel a StorageUnavailable."""

        def silent(result: Any, timeout: float) -> Failure:
            return Failure(unavailable_to_read(blobs, f"no answer within {timeout:g} s"))

        def failed(failure: Failure) -> Failure:
            if failure.check(StorageUnavailable, CancelledError):
                return failure
            return Failure(unavailable_to_read(blobs, _reason(failure)))

        asking.addTimeout(self.timeout, self.clock, onTimeoutCancel=silent)
        return asking.addErrback(failed)


def _reason(failure: Failure) -> str:
    """A one-line reason from an Agent's failure, which may wrap others (ResponseNeverReceived)."""
    inner = getattr(failure.value, "reasons", None)
    if inner:
        return _reason(inner[0])
    return failure.getErrorMessage().rstrip(".") or failure.type.__name__


class ObjectFile(ImmutableFile):
    """A file kept as the object ``key`` of a bucket: answered from its record, fetched or signed.

    Headers, validators, HEAD and ranges are :class:`ImmutableFile`'s, from
    the record; subclasses say how the bytes are had.
    """

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


class RedirectedObject(ObjectFile):
    """A file whose GET is a redirect to a presigned URL of its object.

    Its HEAD is answered here from the record (size, type, validators): the
    URL is signed for GET only.
    """

    def render_GET(self, request: IRequest) -> bytes | int:
        request.setHeader(b"cache-control", b"no-store")
        if_none_match = request.getHeader(b"if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, self.etag):
            request.setResponseCode(304)
            request.setHeader(b"etag", self.etag)
            return b""
        # The type is signed in, so the object store answers with the type
        # this index serves, whatever type the object was stored with.
        signing = self.delivery.sign(self.blobs, self.key, self.content_type.decode("latin-1"))
        request.notifyFinish().addErrback(lambda _: signing.cancel())  # the client left
        signing.addCallbacks(
            self._redirect, self._refuse, callbackArgs=(request,), errbackArgs=(request,)
        )
        return NOT_DONE_YET

    def _redirect(self, url: str, request: IRequest) -> None:
        request.setResponseCode(302)
        request.setHeader(b"location", url.encode("ascii"))
        request.finish()

    def _refuse(self, failure: Failure, request: IRequest) -> None:
        if failure.check(CancelledError):  # the client left: nobody to answer
            return
        request.write(refuse(request, failure.value))
        request.finish()


class StreamedObject(ObjectFile):
    """A file whose bytes are streamed from its object, with the answers of a file on disk."""

    def send(self, request: IRequest, span: tuple[int, int] | None) -> bytes | int:
        if self.size == 0:  # nothing to fetch, and no range of nothing to ask for
            request.setHeader(b"content-length", b"0")
            return b""
        ObjectStream(self, request, span).start()
        return NOT_DONE_YET

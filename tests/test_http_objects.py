"""Files in an S3 bucket leaving the daemon: streamed through, or redirected to the object.

A real SeaweedFS holds the objects, a real :class:`S3BlobStore` signs their
URLs, and :class:`ObjectDelivery` serves them from a twisted.web Site on a
loopback port; clients are plain blocking sockets in threads, as in
``test_file_delivery.py``. A streamed object must answer exactly as the same
bytes on disk do (:class:`StoredFile`, served from the same Site), relay a
slow client's download at the client's pace, stop the download when the
client leaves, and fail in bounded time, with a reason, when the object
store does.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import pytest_twisted
from s3_server import S3Server, s3_environment
from servers import free_port
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from ministry.core.storage_url import parse_storage_url
from ministry.stores.s3 import S3BlobStore
from ministry.web.http.files import StoredFile, sha256_etag
from ministry.web.http.objects import ObjectDelivery

BUCKET = "http-objects"
SMALL = os.urandom(300_000)
BIG_SIZE = 16 * 1024 * 1024
MODIFIED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
KEYS = {"small": "aa/bb/cc/small-1.0.tar.gz", "empty": "aa/bb/cc/empty-1.0.tar.gz"}
MISSING_KEY = "aa/bb/cc/missing-1.0.tar.gz"
BIG_KEY = "aa/bb/cc/big-1.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def big() -> bytes:
    return os.urandom(BIG_SIZE)


@pytest.fixture(scope="module")
def blobs(s3_server: S3Server, big: bytes, tmp_path_factory: pytest.TempPathFactory):
    """A started S3BlobStore over a bucket of this module's, holding the test objects."""
    s3_server.create_bucket(BUCKET)
    storage = parse_storage_url(s3_server.storage_url(BUCKET, "files"))
    store = S3BlobStore(storage, str(tmp_path_factory.mktemp("staging")))
    with pytest.MonkeyPatch.context() as environment:
        for name, value in s3_environment().items():
            environment.setenv(name, value)
        store.startService()
        client = s3_server.client()
        for key, data in ((KEYS["small"], SMALL), (KEYS["empty"], b""), (BIG_KEY, big)):
            client.put_object(Bucket=BUCKET, Key=store.object_key(key), Body=data)
        yield store
        pytest_twisted.blockon(store.stopService())


class Served:
    """A Site on a loopback port with object and disk files side by side."""

    def __init__(self, delivery: ObjectDelivery, blobs: Any, disk_path: str, big: bytes) -> None:
        self.delivery = delivery
        root = Resource()
        for name, data in (("small", SMALL), ("empty", b"")):
            root.putChild(name.encode(), self._object(blobs, KEYS[name], data))
        root.putChild(b"big", self._object(blobs, BIG_KEY, big))
        root.putChild(b"missing", self._object(blobs, MISSING_KEY, SMALL))
        with open(disk_path, "wb") as handle:
            handle.write(SMALL)
        etag = sha256_etag(hashlib.sha256(SMALL).hexdigest())
        disk = StoredFile(disk_path, len(SMALL), b"application/gzip", etag, MODIFIED)
        root.putChild(b"disk", disk)
        self.port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.number = self.port.getHost().port

    def _object(self, blobs: Any, key: str, data: bytes) -> Any:
        etag = sha256_etag(hashlib.sha256(data).hexdigest())
        return self.delivery.file(blobs, key, len(data), b"application/gzip", etag, MODIFIED)

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
        """(status, reason, headers, body) of one request, from a thread."""
        return deferToThread(fetch, self.number, path, headers or {}, method)


def fetch(port: int, path: str, headers: dict[str, str], method: str):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.reason, response.msg, response.read()
    finally:
        connection.close()


@pytest.fixture
def serve(blobs: S3BlobStore, big: bytes, tmp_path):
    """Start a Site with an ObjectDelivery(redirect=..., timeout=...); stopped after the test."""
    started: list[Served] = []

    def start(*, redirect: bool = False, timeout: float = 10.0, store: Any = blobs) -> Served:
        delivery = ObjectDelivery.for_reactor(reactor, redirect=redirect, timeout=timeout)
        delivery.startService()
        served = Served(delivery, store, str(tmp_path / "small.tar.gz"), big)
        started.append(served)
        return served

    yield start
    for served in started:
        pytest_twisted.blockon(served.port.stopListening())
        pytest_twisted.blockon(served.delivery.stopService())


LAST_MODIFIED = format_datetime(MODIFIED, usegmt=True)
SMALL_ETAG = sha256_etag(hashlib.sha256(SMALL).hexdigest()).decode()
SIZE = len(SMALL)
_COMPARED = (
    "content-type",
    "etag",
    "last-modified",
    "accept-ranges",
    "content-length",
    "content-range",
    "cache-control",
    "content-disposition",
    "content-encoding",
)

#: (method, request headers) -> (status, the part of SMALL in the body, or None for none).
CASES = [
    ("GET", {}, 200, slice(None)),
    ("HEAD", {}, 200, None),
    ("GET", {"Range": "bytes=0-99"}, 206, slice(0, 100)),
    ("GET", {"Range": "bytes=100000-"}, 206, slice(100000, None)),
    ("GET", {"Range": "bytes=-5000"}, 206, slice(SIZE - 5000, None)),
    ("GET", {"Range": f"bytes=1000-{SIZE * 2}"}, 206, slice(1000, None)),
    ("GET", {"Range": "bytes=0-0,5-9"}, 200, slice(None)),
    ("GET", {"Range": f"bytes={SIZE}-"}, 416, None),
    ("GET", {"Range": "bytes=10-20", "If-Range": SMALL_ETAG}, 206, slice(10, 21)),
    ("GET", {"Range": "bytes=10-20", "If-Range": '"stale"'}, 200, slice(None)),
    ("GET", {"Range": "bytes=10-20", "If-Range": LAST_MODIFIED}, 206, slice(10, 21)),
    (
        "GET",
        {"Range": "bytes=10-20", "If-Range": format_datetime(MODIFIED - timedelta(days=1), True)},
        200,
        slice(None),
    ),
    ("GET", {"If-None-Match": SMALL_ETAG}, 304, None),
    ("GET", {"If-None-Match": f'"other", W/{SMALL_ETAG}'}, 304, None),
    ("GET", {"If-None-Match": '"other"'}, 200, slice(None)),
]


@pytest_twisted.ensureDeferred
async def test_a_streamed_object_answers_as_the_same_file_on_disk(serve):
    """Every row: the expected status and bytes, and the very headers a disk file gets."""
    served = serve()
    wrong = []
    for method, headers, status, part in CASES:
        code, _, got, body = await served.get("/small", headers, method)
        _, _, disk_headers, disk_body = await served.get("/disk", headers, method)
        expected_body = b"" if part is None else SMALL[part]
        ours = {name: got.get(name) for name in _COMPARED}
        theirs = {name: disk_headers.get(name) for name in _COMPARED}
        if (code, body, ours) != (status, expected_body, theirs) or disk_body != body:
            wrong.append(f"{method} {headers}: {code} {ours} ({len(body)} bytes), disk {theirs}")
    assert wrong == []


@pytest_twisted.ensureDeferred
async def test_the_headers_of_a_whole_object(serve):
    served = serve()
    code, _, headers, body = await served.get("/small")
    assert code == 200 and body == SMALL
    assert headers["Content-Type"] == "application/gzip"
    assert headers["ETag"] == SMALL_ETAG
    assert headers["Last-Modified"] == LAST_MODIFIED
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Length"] == str(SIZE)
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "Content-Encoding" not in headers
    code, _, _, body = await served.get("/small", {"Range": f"bytes={SIZE}-"})
    assert code == 416


@pytest_twisted.ensureDeferred
async def test_an_empty_object(serve):
    code, _, headers, body = await serve().get("/empty")
    assert (code, body, headers["Content-Length"]) == (200, b"", "0")


@pytest_twisted.ensureDeferred
async def test_a_missing_object_is_a_404_saying_so(serve):
    code, reason, headers, body = await serve().get("/missing")
    assert code == 404
    assert b"missing from storage" in body
    assert "missing from storage" in reason
    assert "ETag" not in headers and headers["Cache-Control"] == "no-store"


@pytest_twisted.ensureDeferred
async def test_a_paused_object_store_is_a_503_in_bounded_time(serve, s3_server, blobs):
    served = serve(timeout=2.0)
    assert (await served.get("/small"))[0] == 200  # a pooled connection, now silent
    s3_server.pause()
    try:
        started = time.monotonic()
        code, reason, _, body = await served.get("/small")
        elapsed = time.monotonic() - started
    finally:
        s3_server.resume()
    assert code == 503
    assert elapsed < 6
    assert blobs.location in body.decode()
    assert "no answer within 2 s" in reason
    code, _, _, body = await served.get("/small")
    assert (code, body) == (200, SMALL)  # recovered by itself


class Pointed:
    """A store whose every presigned URL is ``url``: a server of the test's, or nothing."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = f"s3://{BUCKET}/files?endpoint={url}"

    def presigned_url(
        self, key: str, expires: int = 300, content_type: str | None = None
    ) -> Deferred[str]:
        return succeed(self.url)


@pytest_twisted.ensureDeferred
async def test_a_refused_connection_is_a_503_naming_the_storage(serve):
    store = Pointed(f"http://127.0.0.1:{free_port()}/{BUCKET}/files/x")
    code, reason, _, body = await serve(store=store).get("/small")
    assert code == 503
    assert f"File storage unavailable: cannot read a file in {store.location}" in body.decode()
    assert "refused" in reason.lower()


class Flood(Resource):
    """An object store ignoring Range: 200 and 1 GiB announced, sent at 6 MiB/s; how it ended."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.ended: list[Any] = []  # the answer's notifyFinish result: None if all was read
        self.loops: list[LoopingCall] = []

    def render_GET(self, request: Any) -> int:
        request.setHeader(b"content-length", b"%d" % (1 << 30))
        loop = LoopingCall(request.write, b"x" * 65536)
        self.loops.append(loop)
        request.notifyFinish().addBoth(lambda result: (loop.stop(), self.ended.append(result)))
        loop.start(0.01)
        return NOT_DONE_YET


@pytest_twisted.ensureDeferred
async def test_a_body_that_ignored_the_range_is_not_read_to_its_end(serve):
    """A 503 at once, and the whole object is not downloaded just to reuse a connection."""
    flood = Flood()
    port = reactor.listenTCP(0, Site(flood), interface="127.0.0.1")
    try:
        store = Pointed(f"http://127.0.0.1:{port.getHost().port}/{BUCKET}/files/x")
        code, _, _, body = await serve(store=store).get("/small", {"Range": "bytes=0-99"})
        assert code == 503
        assert f"{1 << 30} bytes sent where 100 were expected" in body.decode()
        await _wait_for(lambda: flood.ended, seconds=5)
        assert isinstance(flood.ended[0], Failure)  # its connection was closed, not drained
    finally:
        for loop in flood.loops:
            if loop.running:
                loop.stop()
        await port.stopListening()


class Signer:
    """A store whose URLs are signed when the test says so (as slow credentials would)."""

    location = f"s3://{BUCKET}/files?endpoint=http://127.0.0.1:9"

    def __init__(self) -> None:
        self.pending: list[Deferred[str]] = []

    def presigned_url(
        self, key: str, expires: int = 300, content_type: str | None = None
    ) -> Deferred[str]:
        self.pending.append(Deferred())
        return self.pending[-1]


# -- redirects ------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_redirect_to_a_presigned_url_that_serves_the_bytes(serve, s3_server):
    served = serve(redirect=True)
    code, _, headers, body = await served.get("/small")
    assert (code, body) == (302, b"")
    assert headers["Cache-Control"] == "no-store"
    assert headers["Location"].startswith(s3_server.endpoint + f"/{BUCKET}/files/")
    location = headers["Location"]
    status, _, _, fetched = await deferToThread(_get_url, location, {})
    assert (status, fetched) == (200, SMALL)
    status, _, _, part = await deferToThread(_get_url, location, {"Range": "bytes=10-19"})
    assert (status, part) == (206, SMALL[10:20])
    code, _, headers, _ = await served.get("/small", {"If-None-Match": SMALL_ETAG})
    assert (code, headers["ETag"]) == (304, SMALL_ETAG)


@pytest_twisted.ensureDeferred
async def test_a_head_in_redirect_mode_is_answered_as_a_streamed_one(serve):
    """The presigned URL is signed for GET: a HEAD following it would get a 403."""
    streamed = await serve().get("/small", method="HEAD")
    redirected = await serve(redirect=True).get("/small", method="HEAD")
    for code, _, headers, body in (streamed, redirected):
        assert (code, body, headers["Content-Length"]) == (200, b"", str(SIZE))
    assert {name: redirected[2].get(name) for name in _COMPARED} == {
        name: streamed[2].get(name) for name in _COMPARED
    }


@pytest_twisted.ensureDeferred
async def test_a_redirect_whose_signing_hangs_is_a_503_in_bounded_time(serve):
    store = Signer()
    code, reason, _, body = await serve(redirect=True, timeout=1.0, store=store).get("/small")
    assert code == 503
    assert "no answer within 1 s" in reason
    assert f"cannot read a file in {store.location}" in body.decode()


@pytest_twisted.ensureDeferred
async def test_a_client_leaving_before_its_redirect_is_signed(serve, logged):
    """The URL signed late goes to nobody, and nothing fails."""
    store = Signer()
    served = serve(redirect=True, store=store)
    connection = _open(served.number, "/small")
    await _wait_for(lambda: store.pending)
    connection.close()
    await _wait_for(lambda: store.pending[0].called, seconds=2)  # cancelled: the client left
    store.pending[0].callback("http://127.0.0.1:9/late")
    assert (await served.get("/small", method="HEAD"))[0] == 200  # the Site still answers
    assert logged.failures == []


def _get_url(url: str, headers: dict[str, str]):
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    assert host == "127.0.0.1"
    return fetch(int(port), "/" + path, headers, "GET")


# -- pace, departures and failures mid-body ---------------------------------------


def _open(port: int, path: str) -> socket.socket:
    """A GET with a small receive window (set before connecting), so the server's socket fills."""
    connection = socket.socket()
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    connection.settimeout(30)
    connection.connect(("127.0.0.1", port))
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return connection


def _read_all(connection: socket.socket) -> tuple[bytes, bool]:
    """Everything the server sent, and whether it ended with a reset (an aborted transfer)."""
    chunks = []
    try:
        while chunk := connection.recv(1 << 20):
            chunks.append(chunk)
    except ConnectionResetError:
        return b"".join(chunks), True
    return b"".join(chunks), False


async def _wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await deferLater(reactor, 0.05, lambda: None)


def _only_stream(delivery: ObjectDelivery) -> Any:
    (stream,) = delivery.streams
    return stream


@pytest_twisted.ensureDeferred
async def test_a_slow_client_pauses_the_download_from_the_object_store(serve, big):
    """A client that stops reading holds a bounded part of 16 MiB; then it gets them all."""
    served = serve()
    connection = _open(served.number, "/big")
    try:
        await _wait_for(lambda: len(served.delivery.streams) == 1)
        stream = _only_stream(served.delivery)
        await _wait_for(lambda: stream.paused)
        await deferLater(reactor, 0.5, lambda: None)
        held = stream.received
        await deferLater(reactor, 0.5, lambda: None)
        assert stream.paused
        assert stream.received == held  # the object store's connection is paused too
        assert held < BIG_SIZE // 2
        response, reset = await deferToThread(_read_all, connection)
    finally:
        connection.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and not reset
    assert hashlib.sha256(body).digest() == hashlib.sha256(big).digest()
    assert served.delivery.streams == set()


@pytest_twisted.ensureDeferred
async def test_a_client_leaving_mid_body_stops_the_download(serve):
    served = serve()
    connection = _open(served.number, "/big")
    await _wait_for(lambda: len(served.delivery.streams) == 1)
    stream = _only_stream(served.delivery)
    await deferToThread(connection.recv, 100_000)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    connection.close()  # a reset, mid-body
    await _wait_for(lambda: not served.delivery.streams)
    stopped_at = stream.received
    await deferLater(reactor, 0.5, lambda: None)
    assert stream.received == stopped_at < BIG_SIZE // 2


@pytest_twisted.ensureDeferred
async def test_an_object_store_failing_mid_body_cuts_the_client_off(serve, s3_server):
    """Headers went out with a 200: the client must see a broken transfer, not a short file."""
    served = serve(timeout=2.0)
    connection = _open(served.number, "/big")
    try:
        await _wait_for(lambda: len(served.delivery.streams) == 1)
        stream = _only_stream(served.delivery)
        await _wait_for(lambda: stream.paused)
        s3_server.pause()
        try:
            started = time.monotonic()
            response, reset = await deferToThread(_read_all, connection)
            elapsed = time.monotonic() - started
        finally:
            s3_server.resume()
    finally:
        connection.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert f"Content-Length: {BIG_SIZE}".encode() in head
    assert reset and len(body) < BIG_SIZE
    assert elapsed < 10
    assert served.delivery.streams == set()

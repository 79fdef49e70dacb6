"""Big simple pages in gzip for clients that take it (issue 17: a cached big page's rate).

A simple page of thousands of files is megabytes, and its rate is bound by
its bytes; pip (urllib3) and uv (reqwest) send ``Accept-Encoding: gzip``.
A page from :data:`~ministry.web.http.rendered.GZIP_MIN` bytes is compressed
once after it is rendered, in a thread, and kept beside the identity copy in
the page cache (both counted in its bound). These tests ask for it with
every kind of ``Accept-Encoding``, revalidate either copy, and check the
fast lane writes what twisted.web does. ``tests/test_gzip_pages_e2e.py``
installs through it with real pip and uv.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading

import pytest
import pytest_twisted
from accept_headers import JSON_V1, TEXT_HTML
from http_harness import InMemoryIndex, Response
from store_records import add_releases, make_record
from test_fast_lane import both_ways, warm
from twisted.internet import reactor, threads
from twisted.internet.task import deferLater

from ministry.catalog.cache import PageCache, weight
from ministry.web.http import rendered
from ministry.web.http.rendered import GZIP_MIN, Page, accepts_gzip

PROJECT = "many-files"
PATH = f"/simple/{PROJECT}/"
#: Enough files for a page over GZIP_MIN in either format (about 30 kB of HTML).
FILES = 100


@pytest_twisted.async_yield_fixture
async def many(index: InMemoryIndex):
    await add_releases(index.store, PROJECT, FILES)
    yield index


async def compressed(index: InMemoryIndex, accept: str, path: str = PATH) -> Response:
    """The page once its gzip copy is made: in a thread, after the first render."""
    for _ in range(500):
        response = await index.request("GET", path, {"Accept": accept, "Accept-Encoding": "gzip"})
        if response.header("content-encoding") == "gzip":
            return response
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"{path} never came compressed")


#: (Accept-Encoding, whether the gzip copy is sent).
ENCODINGS = [
    pytest.param(None, False, id="no header"),
    pytest.param("gzip", True, id="gzip"),
    pytest.param("gzip;q=0", False, id="gzip;q=0 refuses it"),
    pytest.param("br", False, id="br alone"),
    pytest.param("*", True, id="any coding"),
    pytest.param("identity", False, id="identity"),
    pytest.param("gzip,deflate", True, id="pip (urllib3)"),
    pytest.param("*, gzip;q=0", False, id="the named coding beats the wildcard"),
    pytest.param("identity;q=0.5, *;q=0.1", True, id="a low wildcard still takes it"),
    pytest.param("GZIP; Q=0.5", True, id="any case"),
    pytest.param("", False, id="empty"),
]


@pytest.mark.parametrize(("accept_encoding", "gzipped"), ENCODINGS)
@pytest_twisted.ensureDeferred
async def test_the_coding_follows_accept_encoding(many, accept_encoding, gzipped):
    for accept in (TEXT_HTML, JSON_V1):
        packed = await compressed(many, accept)
        identity = await many.request("GET", PATH, {"Accept": accept})
        assert len(identity.body) >= GZIP_MIN
        headers = {"Accept": accept}
        if accept_encoding is not None:
            headers["Accept-Encoding"] = accept_encoding
        for method in ("GET", "HEAD"):
            response = await many.request(method, PATH, headers)
            assert response.code == 200
            assert response.header("content-type") == accept
            assert response.header("vary") == "Accept, Accept-Encoding"
            expected = packed if gzipped else identity
            assert response.header("content-encoding") == ("gzip" if gzipped else None)
            assert response.header("etag") == expected.header("etag")
            if method == "GET":  # Content-Length: read from the wire in the lane's tests
                assert response.body == expected.body
        assert packed.header("etag") != identity.header("etag")
        assert identity.header("vary") == "Accept, Accept-Encoding"
        assert identity.header("content-encoding") is None
        assert gzip.decompress(packed.body) == identity.body


@pytest.mark.parametrize("accept_encoding", ["gzip", None])
@pytest_twisted.ensureDeferred
async def test_a_revalidation_of_either_copy_is_a_304_naming_it(many, accept_encoding):
    packed = await compressed(many, TEXT_HTML)
    identity = await many.request("GET", PATH, {"Accept": TEXT_HTML})
    for held in (packed, identity):
        headers = {"Accept": TEXT_HTML, "If-None-Match": held.header("etag")}
        if accept_encoding is not None:
            headers["Accept-Encoding"] = accept_encoding
        for method in ("GET", "HEAD"):
            response = await many.request(method, PATH, headers)
            assert response.code == 304, (method, held.header("etag"))
            assert response.header("etag") == held.header("etag")
            # A cache merges a 304's headers into the copy it holds: never a new coding.
            assert response.header("content-encoding") is None
            assert response.header("vary") == "Accept, Accept-Encoding"
            assert response.body == b""
    stale = {"Accept": TEXT_HTML, "Accept-Encoding": "gzip", "If-None-Match": '"old"'}
    assert (await many.request("GET", PATH, stale)).body == packed.body


@pytest_twisted.ensureDeferred
async def test_a_small_page_stays_identity(index):
    record = make_record("small-1.0-py3-none-any.whl", "small", "1" * 64)
    assert await index.store.add_file(record, "small", None)
    for _ in range(3):  # a gzip copy, if one were made, would be ready by the last
        response = await index.request("GET", "/simple/small/", {"Accept-Encoding": "gzip"})
        await deferLater(reactor, 0.02, lambda: None)
    assert response.code == 200 and len(response.body) < GZIP_MIN
    assert response.header("content-encoding") is None
    assert response.header("vary") == "Accept"


@pytest_twisted.ensureDeferred
async def test_the_index_of_every_project_is_compressed_too(index, monkeypatch):
    monkeypatch.setattr(rendered, "GZIP_MIN", 100)
    record = make_record("small-1.0-py3-none-any.whl", "small", "1" * 64)
    assert await index.store.add_file(record, "small", None)
    packed = await compressed(index, TEXT_HTML, "/simple/")
    identity = await index.request("GET", "/simple/", {"Accept": TEXT_HTML})
    assert gzip.decompress(packed.body) == identity.body and b"small" in identity.body


@pytest_twisted.ensureDeferred
async def test_pages_are_compressed_off_the_reactor_thread(many, monkeypatch):
    """Compressing 3 MB takes 100-150 ms, which no other request may wait for."""
    threads = []
    compress = gzip.compress

    def spied(*args, **kwargs):
        threads.append(threading.current_thread())
        return compress(*args, **kwargs)

    monkeypatch.setattr(rendered.gzip, "compress", spied)
    await compressed(many, TEXT_HTML)
    await compressed(many, JSON_V1)
    assert len(threads) == 2 and threading.main_thread() not in threads


@pytest_twisted.ensureDeferred
async def test_the_gzip_copy_counts_in_the_cache_bound(many, monkeypatch):
    release = threading.Event()
    compress = gzip.compress

    def held(*args, **kwargs):
        assert release.wait(10)
        return compress(*args, **kwargs)

    monkeypatch.setattr(rendered.gzip, "compress", held)
    identity = await many.request("GET", PATH, {"Accept": TEXT_HTML})  # cached, not compressed
    before = _cache_bytes(await many.request("GET", "/health"))
    release.set()
    packed = await compressed(many, TEXT_HTML)
    grown = _cache_bytes(await many.request("GET", "/health")) - before
    assert grown == len(packed.body), (grown, len(packed.body), len(identity.body))


def _cache_bytes(health: Response) -> int:
    return json.loads(health.body)["page_cache"]["bytes"]


def test_a_page_weighs_both_copies():
    page = Page.of(b"<a>file</a>\n" * 10_000, "text/html")
    packed = page.with_gzip()
    assert packed.gzipped is not None and packed.gzipped.encoding == b"gzip"
    assert weight(packed) == weight(page) + len(packed.gzipped.body)
    assert gzip.decompress(packed.gzipped.body) == page.body
    assert not packed.wants_gzip() and page.wants_gzip()
    assert not Page.of(b"x" * (GZIP_MIN - 1), "text/html").wants_gzip()


@pytest_twisted.ensureDeferred
async def test_an_upgrade_keeps_the_bound_and_never_brings_back_a_dropped_page():
    page = Page.of(b"<a>file</a>\n" * 10_000, "text/html")
    packed = page.with_gzip()
    cache = PageCache(max_bytes=weight(packed) + weight(Page.of(b"x", "text/html")))
    await cache.fill(("a", "simple"), lambda: page)
    await cache.fill(("b", "simple"), lambda: Page.of(b"x", "text/html"))
    before = cache.bytes
    # "b" is the least recently used: the heavier "a" pushes it out.
    cache.upgrade(("a", "simple"), page, packed)
    assert cache.get(("a", "simple")) is packed and cache.get(("b", "simple")) is not None
    assert cache.bytes == before + len(packed.gzipped.body) <= cache.max_bytes
    cache.upgrade(("a", "simple"), page, Page.of(b"y" * 2 * cache.max_bytes, "text/html"))
    assert cache.get(("a", "simple")) is packed  # too big to hold: the old copy stays
    # A page dropped (an upload) while it was being compressed stays dropped,
    # and a page rendered again after is not replaced by the old one's copy.
    cache.invalidate("a")
    cache.upgrade(("a", "simple"), page, packed)
    assert cache.get(("a", "simple")) is None
    fresh = Page.of(b"<a>new</a>\n", "text/html")
    await cache.fill(("a", "simple"), lambda: fresh)
    cache.upgrade(("a", "simple"), page, packed)
    assert cache.get(("a", "simple")) is fresh
    assert cache.bytes == weight(fresh) + weight(Page.of(b"x", "text/html"))


@pytest.mark.parametrize(
    ("header", "takes"),
    [
        (None, False),
        (b"gzip", True),
        (b"gzip;q=0", False),
        (b"gzip;q=0.0, *", False),
        (b"*;q=0", False),
        (b"br, zstd", False),
        (b"deflate, gzip;q=1.0, *;q=0.5", True),
        (b"gzip;q=nan", False),
        (b"gzip;q=2", False),
    ],
)
def test_accepts_gzip(header, takes):
    assert accepts_gzip(header) is takes


# -- through the fast lane ----------------------------------------------------------


@pytest_twisted.async_yield_fixture
async def served(many):
    port = reactor.listenTCP(0, many.site, interface="127.0.0.1")
    many.port = port.getHost().port
    yield many
    await port.stopListening()


PIP_GET = (
    f"GET {PATH} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip,deflate\r\nAccept: {JSON_V1}\r\n\r\n"
).encode()


@pytest_twisted.ensureDeferred
async def test_the_fast_lane_sends_the_gzip_copy_as_twisted_web_does(served):
    packed = await compressed(served, JSON_V1)
    await warm(served, PIP_GET)
    fast, slow, answered = await both_ways(served, PIP_GET)
    assert answered == 1 and fast == slow
    assert b"\r\nContent-Encoding: gzip\r\n" in fast
    assert f"\r\nContent-Length: {len(packed.body)}\r\n".encode() in fast
    assert fast.endswith(b"\r\n\r\n" + packed.body)
    head = await threads.deferToThread(head_of, served.port, PIP_GET.replace(b"GET", b"HEAD"))
    assert f"\r\nContent-Length: {len(packed.body)}\r\n".encode() in head
    assert b"\r\nContent-Encoding: gzip\r\n" in head


def head_of(port: int, request_bytes: bytes) -> bytes:
    """The answer to a HEAD: its head alone (a HEAD's Content-Length promises no body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request_bytes)
        answer = b""
        while not answer.endswith(b"\r\n\r\n"):
            chunk = conn.recv(65536)
            assert chunk, answer
            answer += chunk
    return answer

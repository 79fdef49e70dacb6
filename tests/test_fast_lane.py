"""The fast lane (``ministry.web.http.fastlane``): which requests it takes, and that its
answers are the ones twisted.web gives.

The equivalence tests serve the real Site on a loopback port in this process
and send raw requests from a thread, once with the lane and once without it,
comparing status, headers (all but Date) and body byte for byte.
"""

from __future__ import annotations

import socket

import pytest
import pytest_twisted
from accept_headers import PIP as PIP_ACCEPT
from archive_factory import make_wheel, wheel_filename
from http_harness import InMemoryIndex
from twisted.internet import reactor, threads
from twisted.internet.task import deferLater

from ministry.web.http.fastlane import parse

PLAIN = b"GET /simple/demo/ HTTP/1.1\r\nHost: x\r\n\r\n"
#: What pip 25 sends for a project page (its Accept and keep-alive included).
PIP = (
    b"GET /simple/demo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: pip/25.0\r\n"
    b"Accept-Encoding: gzip, deflate\r\nAccept: " + PIP_ACCEPT.encode() + b"\r\n"
    b"Connection: keep-alive\r\nCache-Control: max-age=0\r\n\r\n"
)


@pytest.mark.parametrize(
    "request_bytes",
    [
        PLAIN,
        PIP,
        b"GET /packages/demo/demo-1.0-py3-none-any.whl HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /simple/ HTTP/1.1\r\n\r\n",
        b"GET /simple/demo/ HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\n",
    ],
)
def test_plain_gets_are_taken(request_bytes):
    assert parse(request_bytes) is not None


@pytest.mark.parametrize(
    ("why", "request_bytes"),
    [
        ("HEAD", b"HEAD /simple/demo/ HTTP/1.1\r\n\r\n"),
        ("POST", b"POST /simple/demo/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
        ("HTTP/1.0", b"GET /simple/demo/ HTTP/1.0\r\n\r\n"),
        ("query", b"GET /simple/demo/?format=json HTTP/1.1\r\n\r\n"),
        ("escapes", b"GET /simple/d%65mo/ HTTP/1.1\r\n\r\n"),
        ("fragment", b"GET /simple/demo/#x HTTP/1.1\r\n\r\n"),
        ("absolute form", b"GET http://x/simple/demo/ HTTP/1.1\r\n\r\n"),
        ("two requests", PLAIN + PLAIN),
        ("half a request", PLAIN[:-2]),
        ("a body", b"GET /simple/demo/ HTTP/1.1\r\n\r\nbody"),
        ("close", b"GET /simple/demo/ HTTP/1.1\r\nConnection: close\r\n\r\n"),
        ("credentials", b"GET /simple/demo/ HTTP/1.1\r\nAuthorization: Basic eDp5\r\n\r\n"),
        ("revalidation", b'GET /simple/demo/ HTTP/1.1\r\nIf-None-Match: "abc"\r\n\r\n'),
        ("since", b"GET /simple/demo/ HTTP/1.1\r\nIf-Modified-Since: x\r\n\r\n"),
        ("range", b"GET /packages/demo/f.whl HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n"),
        ("if-range", b"GET /packages/demo/f.whl HTTP/1.1\r\nIf-Range: x\r\n\r\n"),
        ("chunked", b"GET /simple/demo/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("expect", b"GET /simple/demo/ HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"),
        ("upgrade", b"GET /simple/demo/ HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"),
        ("repeated", b"GET /simple/demo/ HTTP/1.1\r\nAccept: a\r\nAccept: b\r\n\r\n"),
        ("folded", b"GET /simple/demo/ HTTP/1.1\r\nAccept: a\r\n b\r\n\r\n"),
        ("space in name", b"GET /simple/demo/ HTTP/1.1\r\nAccept : a\r\n\r\n"),
        ("no colon", b"GET /simple/demo/ HTTP/1.1\r\nAccept\r\n\r\n"),
        ("huge", b"GET /simple/demo/ HTTP/1.1\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n"),
        ("bare LF", b"GET /simple/demo/ HTTP/1.1\nHost: x\n\n"),
    ],
)
def test_anything_else_goes_to_twisted_web(why, request_bytes):
    assert parse(request_bytes) is None, why


# -- the same answers, over a real connection --------------------------------------


@pytest_twisted.async_yield_fixture(params=["direct", "x-accel"])
async def served(request, tmp_path):
    """The Site on a loopback port with project ``demo`` 1.0 uploaded (and cached)."""
    options = {"access-log": str(tmp_path / "access.log")}
    if request.param == "x-accel":
        options["x-accel-redirect"] = "/_ministry/"
    index = InMemoryIndex(str(tmp_path / "data"), **options)
    await index.start()
    wheel = make_wheel("demo", "1.0")
    response = await index.upload("demo", "1.0", wheel_filename("demo", "1.0"), wheel)
    assert response.code == 200
    port = reactor.listenTCP(0, index.site, interface="127.0.0.1")
    index.port = port.getHost().port
    yield index
    await port.stopListening()
    await index.stop()


def exchange(port: int, *requests: bytes) -> list[bytes]:
    """Send each request (or pipelined requests) on one connection, in turn, and
    read all its answers before the next; every whole answer, as bytes."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        reader = conn.makefile("rb")
        for request in requests:
            conn.sendall(request)
            for _ in range(request.count(b" HTTP/1.1\r\n")):
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    assert line, f"connection closed after {head!r}"
                    head += line
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                answers.append(head + reader.read(length))
    return answers


async def warm(index: InMemoryIndex, *requests: bytes) -> None:
    """Send each request until the lane answers it: its page is cached and stays so.

    The store announces an upload a moment after answering it, and that
    notice empties the cache again: one first request is not enough.
    """
    for request_bytes in requests:
        for _ in range(100):
            before = index.site.fast_lane.answered
            await threads.deferToThread(exchange, index.port, request_bytes)
            if index.site.fast_lane.answered > before:
                break
            await deferLater(reactor, 0.02, lambda: None)
        else:
            raise AssertionError(f"the lane never answered {request_bytes!r}")


def without_date(answer: bytes) -> bytes:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.startswith(b"Date: ")]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def both_ways(index: InMemoryIndex, request_bytes: bytes) -> tuple[bytes, bytes, int]:
    """(answer with the lane, answer without it, requests the lane answered)."""
    lane = index.site.fast_lane
    before = lane.answered
    (fast,) = await threads.deferToThread(exchange, index.port, request_bytes)
    answered = lane.answered - before
    index.site.fast_lane = None
    try:
        (slow,) = await threads.deferToThread(exchange, index.port, request_bytes)
    finally:
        index.site.fast_lane = lane
    return without_date(fast), without_date(slow), answered


WHEEL = "/packages/demo/" + wheel_filename("demo", "1.0")

#: (request, answered by the lane when files are sent directly, with X-Accel-Redirect)
ROWS = [
    (b"GET /simple/demo/ HTTP/1.1\r\nHost: x\r\n\r\n", True, True),
    (PIP, True, True),
    (b"GET /simple/ HTTP/1.1\r\nHost: x\r\n\r\n", True, True),
    (b"GET /packages/demo/ HTTP/1.1\r\nHost: x\r\n\r\n", True, True),
    (b"GET /packages/ HTTP/1.1\r\nHost: x\r\n\r\n", True, True),
    (f"GET {WHEEL} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), False, True),
    (f"GET {WHEEL}.metadata HTTP/1.1\r\nHost: x\r\n\r\n".encode(), False, False),
    (b"GET /simple/Demo/ HTTP/1.1\r\nHost: x\r\n\r\n", False, False),
    (b"GET /simple/absent/ HTTP/1.1\r\nHost: x\r\n\r\n", False, False),
    (b"GET /simple HTTP/1.1\r\nHost: x\r\n\r\n", False, False),
    (b"GET /simple/demo/?format=json HTTP/1.1\r\nHost: x\r\n\r\n", False, False),
    (b"GET /simple/demo/ HTTP/1.1\r\nAccept: application/x-nothing\r\n\r\n", False, False),
    (b'GET /simple/demo/ HTTP/1.1\r\nIf-None-Match: "nope"\r\n\r\n', False, False),
    (b"GET /pypi/demo/json HTTP/1.1\r\nHost: x\r\n\r\n", False, False),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False, False),
]


@pytest.mark.parametrize(("request_bytes", "direct", "accel"), ROWS)
@pytest_twisted.ensureDeferred
async def test_the_lane_answers_as_twisted_web_does(served, request_bytes, direct, accel):
    expected = accel if served.settings.x_accel_redirect else direct
    if expected:
        await warm(served, request_bytes)
    else:  # the first request renders what can be cached
        await threads.deferToThread(exchange, served.port, request_bytes)
    fast, slow, answered = await both_ways(served, request_bytes)
    assert fast == slow
    assert answered == int(expected)


@pytest_twisted.ensureDeferred
async def test_one_connection_mixes_lane_and_twisted_web_answers_in_order(served):
    page = b"GET /simple/demo/ HTTP/1.1\r\nHost: x\r\n\r\n"
    revalidate = b'GET /simple/demo/ HTTP/1.1\r\nIf-None-Match: "x"\r\n\r\n'
    listing = b"GET /packages/demo/ HTTP/1.1\r\nHost: x\r\n\r\n"
    await warm(served, page, listing)
    before = served.site.fast_lane.answered
    answers = await threads.deferToThread(
        exchange, served.port, page, revalidate, page, page + listing, listing
    )
    # The pipelined pair went to twisted.web, which answered both, in order.
    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [b"HTTP/1.1 200 OK"] * 6
    assert all(b"Links for demo" in answer for answer in answers[:4])
    assert all(b"Index of /packages/demo/" in answer for answer in answers[4:])
    assert served.site.fast_lane.answered - before == 3


@pytest_twisted.ensureDeferred
async def test_lane_answers_are_logged_and_counted(served, tmp_path):
    page = b"GET /simple/demo/ HTTP/1.1\r\nUser-Agent: lane-test\r\nReferer: here\r\n\r\n"
    await warm(served, page)
    log = tmp_path / "access.log"
    counted = await metric(served, SIMPLE_200)
    answered_before = await metric(served, "ministry_fast_lane_answers_total")
    await deferLater(reactor, 0, lambda: None)  # the access log writes at the end of a turn
    mark = log.stat().st_size
    _, _, answered = await both_ways(served, page)
    assert answered == 1
    await deferLater(reactor, 0, lambda: None)
    with open(log) as handle:
        handle.seek(mark)
        lines = handle.readlines()
    assert len(lines) == 2, lines
    strip = [line.split("]", 1)[1] for line in lines]  # the timestamp may differ
    assert strip[0] == strip[1]
    assert strip[0].startswith(' "GET /simple/demo/ HTTP/1.1" 200 ')
    assert strip[0].endswith(' "here" "lane-test"\n')
    assert await metric(served, SIMPLE_200) == counted + 2
    assert await metric(served, "ministry_fast_lane_answers_total") == answered_before + 1


SIMPLE_200 = 'ministry_http_requests_total{method="GET",route="simple",status="200"}'


async def metric(index: InMemoryIndex, series: str) -> float:
    text = (await index.request("GET", "/metrics")).body.decode()
    (line,) = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(line.rsplit(" ", 1)[1])


@pytest_twisted.ensureDeferred
async def test_a_private_index_has_no_lane(tmp_path):
    index = InMemoryIndex(str(tmp_path), private=True)
    assert index.site.fast_lane is None

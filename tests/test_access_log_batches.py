"""The access log's batches, on a clock the test turns, and its lines, against twisted.web's."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.web.http import combinedLogFormatter

from ministry.web.http.access_log import SYSTEM, AccessLog, combined_line


def test_the_lines_of_one_turn_go_out_in_one_write_and_none_is_kept_back():
    clock, batches = Clock(), []
    access = AccessLog(batches.append, clock, prefixed=False)
    access.write("one\n")
    access.write("two\n")
    assert batches == []  # not on the request's path
    clock.advance(0)
    assert batches == ["one\ntwo\n"]
    access.write("three\n")
    access.close()  # twisted.web's stopFactory: flushed, and still open
    access.write("four\n")
    clock.advance(0)
    assert batches == ["one\ntwo\n", "three\n", "four\n"]
    access.write("five\n")
    access.shut()  # after the reactor stopped: no turn ends any more
    access.write("six\n")
    assert batches[-2:] == ["five\n", "six\n"]


def test_prefixed_lines_carry_twistds_timestamp_and_system():
    clock, batches = Clock(), []
    access = AccessLog(batches.append, clock, prefixed=True)
    access.write("line\n")
    clock.advance(0)
    (batch,) = batches
    stamp, system, rest = batch.split(" ", 2)
    assert system == f"[{SYSTEM}]" and rest == "line\n"
    assert len(stamp) == len("2026-12-02T23:25:53+0000")


class _Request:
    """What a log formatter reads of a request."""

    def __init__(self, client, uri, headers, code=200, sent=1234, method=b"GET") -> None:
        self.client, self.uri, self.headers = client, uri, headers
        self.code, self.sentLength, self.method = code, sent, method
        self.clientproto = b"HTTP/1.1"

    def getHeader(self, name):
        return self.headers.get(name)

    def getClientAddress(self):
        return self.client


V4 = IPv4Address("TCP", "127.0.0.1", 5555)


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(_Request(V4, b"/simple/demo/", {b"user-agent": b"pip/26.0"}), id="plain"),
        pytest.param(_Request(IPv6Address("TCP", "::1", 1), b"/", {}), id="ipv6-no-headers"),
        pytest.param(_Request(UNIXAddress(b"/run/m.sock"), b"/x", {}), id="unix-socket"),
        pytest.param(
            _Request(V4, b"/a\"b\\c'd", {b"referer": b'say "hi"', b"user-agent": b"\xff\x00\n"}),
            id="quotes-backslashes-bytes",
        ),
        pytest.param(_Request(V4, b"/" + b"a" * 4000, {}, code=404, sent=0), id="long-404"),
        pytest.param(_Request(V4, b"/u", {}, method=b"HEAD", sent=None), id="head"),
    ],
)
def test_lines_are_twisted_webs_combined_format_to_the_byte(request_):
    stamp = "[03/Dec/2026:07:15:00 +0000]"
    for _ in range(2):  # the first time escaped, the second remembered
        assert combined_line(stamp, request_) == combinedLogFormatter(stamp, request_)

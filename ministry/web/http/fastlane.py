"""The fast lane: answers held in memory, written before twisted.web parses the request.

Why: twisted.web spends about 0.13 ms of CPU on any request, even one answered
with an empty body: HTTPChannel's line-by-line parser, a Request with two
Headers objects, traversal, and the render, finish and log chain. For a cached
``/simple/<project>/`` page, or a file answered with ``X-Accel-Redirect``
behind nginx, that is nearly all the work there is. Behind nginx on two cores
it held downloads to about 70% of what nginx serves alone, because every
download paid for it.

What: when a connection is idle (no request in flight, nothing buffered) and
one read holds exactly one plain request (``GET``, HTTP/1.1, no query string,
no percent-escapes, no body, no header that could change the answer:
conditionals, ranges, credentials, ``Connection: close``), the lane asks the
same look-ups as ``ministry.web.http.shortcut`` for the resource. When that is a
:class:`FixedAnswer` whose whole answer is in memory (a cached page up to one
chunk; a file's header-only redirect), the lane writes the status line,
headers and body twisted.web would have written for it, and logs and counts
the request like any other. Everything else goes to twisted.web untouched,
which has not seen a byte of the connection until then. The lane is off for a
``--private`` index, whose reads need credentials.

The lane takes no request that twisted.web would refuse: its head is within
the channel's limits (``ministry.web.http.channel``: bytes, header lines), and,
being whole in one read, within any deadline. The channel offers the lane
each read and keeps the head deadline itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from twisted.web import http, server

from ministry.web.http.channel import MAX_HEAD, MAX_HEADERS
from ministry.web.http.sending import write_at_once
from ministry.web.http.shortcut import Lookup

#: Headers after which the answer may differ from the cached one.
_DECLINED = frozenset(
    {
        b"authorization",
        b"range",
        b"if-range",
        b"if-match",
        b"if-none-match",
        b"if-modified-since",
        b"if-unmodified-since",
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"upgrade",
    }
)
_NO_ARGS: Mapping[bytes, list[bytes]] = MappingProxyType({})
_STATUS = b"HTTP/1.1 200 OK\r\nServer: " + server.version + b"\r\nDate: "

#: A resource's fixed answer: its headers in order (before Content-Length) and body.
Answer = tuple[list[tuple[bytes, bytes]], bytes]


class FixedAnswer:
    """A resource that may know its whole 200 answer without seeing the request.

    Its render methods must set the headers of :meth:`fixed_answer` from the
    same list (both classes build it in ``fixed_headers``), so that both ways
    give one answer; ``tests/test_fast_lane.py`` compares them byte for byte.
    """

    def fixed_answer(self) -> Answer | None:
        """The answer to a plain GET, or None when it cannot be written from memory."""
        raise NotImplementedError


@dataclass
class Probe:
    """The parts of a request the look-ups read, for a request the lane parsed."""

    uri: bytes
    postpath: list[bytes]
    headers: dict[bytes, bytes]
    method = b"GET"
    args = _NO_ARGS  # the lane takes no query string

    def getHeader(self, name: bytes) -> bytes | None:
        return self.headers.get(name.lower())


@dataclass
class Served:
    """A request the lane answered, as the access log and the metrics read it.

    Has the attributes twisted.web's log formatter reads of a Request.
    """

    probe: Probe
    channel: http.HTTPChannel
    sentLength: int
    started: float
    method = b"GET"
    clientproto = b"HTTP/1.1"
    code = 200

    @property
    def uri(self) -> bytes:
        return self.probe.uri

    @property
    def path(self) -> bytes:
        return self.probe.uri

    def getHeader(self, name: bytes) -> bytes | None:
        return self.probe.getHeader(name)

    def getClientAddress(self) -> object:
        """The peer, or behind a trusted proxy the client it names (``web.http.clients``)."""
        forwarded = self.probe.headers.get(b"x-forwarded-for")
        proxies = self.channel.site.connections.limits.proxies
        return proxies.client(self.channel.transport.getPeer(), forwarded and [forwarded])


def parse(data: bytes) -> Probe | None:
    """The request in ``data`` if it is one whole plain GET (see the module docstring)."""
    head, blank, rest = data.partition(b"\r\n\r\n")
    if rest or not blank or len(head) > MAX_HEAD or not head.startswith(b"GET /"):
        return None  # a longer head goes to the channel, which refuses it
    lines = head.split(b"\r\n")
    if len(lines) > MAX_HEADERS + 1:
        return None
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1":
        return None
    target = parts[1]
    if b"?" in target or b"%" in target or b"#" in target:
        return None
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        name = name.lower()
        if not colon or not name or b" " in name or b"\t" in name or name in headers:
            return None  # folded, malformed or repeated: twisted.web decides
        if name in _DECLINED:
            return None
        headers[name] = value.strip()
    connection = headers.get(b"connection")
    if connection is not None and connection.lower() != b"keep-alive":
        return None
    return Probe(target, target[1:].split(b"/"), headers)


class FastLane:
    """Answers what it can of a connection's next request (see the module docstring).

    ``lookups`` maps a first path segment to the look-up of that tree's
    Shortcut; ``log`` is the site's, called once per answer.
    """

    def __init__(self, lookups: Mapping[bytes, Lookup], log: Callable[[Served], None]) -> None:
        self.lookups = dict(lookups)
        self.log = log
        #: Requests answered here, for /metrics.
        self.answered = 0
        self._date_second = -1
        self._date = b""

    def answer(self, channel: http.HTTPChannel, data: bytes) -> bool:
        """Write the answer to the request in ``data`` if it has one; whether it did."""
        started = time.monotonic()
        probe = parse(data)
        if probe is None:
            return False
        lookup = self.lookups.get(probe.postpath[0])
        if lookup is None or len(probe.postpath) < 2:
            return False
        del probe.postpath[0]  # as traversal pops it on the way to the tree
        found = lookup(probe)
        answer = found.fixed_answer() if isinstance(found, FixedAnswer) else None
        if answer is None:
            return False
        headers, body = answer
        head = [_STATUS, self._now(), b"\r\n"]
        for name, value in headers:
            head += (name, b": ", value, b"\r\n")
        head.append(b"Content-Length: %d\r\n\r\n" % len(body))
        head.append(body)
        write_at_once(channel.transport, b"".join(head))
        self.answered += 1
        self.log(Served(probe, channel, len(body), started))
        return True

    def _now(self) -> bytes:
        """The Date header's value, formatted once a second."""
        second = int(time.time())
        if second != self._date_second:
            self._date_second, self._date = second, http.datetimeToString(second)
        return self._date

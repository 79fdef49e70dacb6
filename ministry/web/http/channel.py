"""The HTTP channel: every malformed or unwelcome request answered, and no peer held forever.

twisted.web's HTTPChannel closes a connection without a word on a line over
16 KiB, answers a bare ``400 Bad Request`` to anything else it cannot parse,
sends ``100 Continue`` to any request that asks, and restarts its idle timer
on every byte, so a head trickled a byte a minute holds its connection for
ever. :class:`IndexChannel` keeps its parser and changes what it does at
those points:

- every refusal has a status and a reason, in the status line and the body:
  414 for a request line over :data:`MAX_LINE`, 431 for a header line over
  it, a head over :data:`MAX_HEAD` bytes or more than :data:`MAX_HEADERS`
  headers, 400 for what is not HTTP/1.1, 408 for a head that took longer
  than ``--header-timeout``;
- when a head with a body is complete, the site's ``plan_body`` decides
  (``ministry.web.http.bodies``) before a byte of the body is read and before
  ``100 Continue`` is sent, which twisted.web's ``allHeadersReceived`` does
  itself: refusing here means it never runs;
- a refusal is written at once, then the connection lingers, reading and
  dropping what the client still sends for up to :data:`LINGER_SECONDS`
  (closing with unread bytes would reset the connection and lose the answer
  before the client reads it), then closes;
- the head deadline runs from the connection's start, and from the first
  byte of each later request, until the head is complete; it does not
  restart on each byte. The idle timeout between requests is twisted.web's;
- a connection whose first byte opens a TLS handshake (an ``https://`` URL
  sent to this plain-HTTP port) is refused at once with a 400 saying so: the
  parser would otherwise wait for a line end that never comes, and a client
  such as uv, which asks ``https://HOST/_/oidc/audience`` whatever the
  index's scheme, would wait out its connect timeout on every retry;
- it counts itself in the site's :class:`~ministry.web.http.connections.Connections`.

The fast lane (``ministry.web.http.fastlane``) is offered each read first; it
takes only a whole plain request within the same limits.

Reads HTTPChannel's own state: ``requests``, ``_command``, ``_path``,
``_handlingRequest``, ``_receivedHeaderSize`` and ``_receivedHeaderCount``,
and LineReceiver's ``line_mode`` and ``_buffer``: a Twisted upgrade that
renames them shows in ``tests/test_http_malformed.py`` and, for the fast
lane's ``_idle`` (a mixed, pipelined connection), in ``tests/test_fast_lane.py``.
"""

from __future__ import annotations

import time

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.web import http

from ministry.core.errors import BadRequest, MinistryError
from ministry.web.http.responses import refusal_bytes

log = Logger()

#: The longest request line or header line (twisted.web's own bound).
MAX_LINE = 16384
#: The most bytes of a whole head, line endings not counted (twisted.web's own bound).
MAX_HEAD = 16384
#: The most header lines in a head (twisted.web allows 500; clients send about 10).
MAX_HEADERS = 100
#: How long a refused connection is read from (and what is read dropped) before it closes.
LINGER_SECONDS = 2.0
#: The first byte of a TLS record of type handshake: never the first byte of an HTTP request.
TLS_HANDSHAKE = b"\x16"


def _head_too_large(what: str) -> MinistryError:
    return MinistryError(f"Request Header Fields Too Large: {what}.", status=431)


class IndexChannel(http.HTTPChannel):
    """An HTTPChannel with the limits of the module docstring, and the fast lane."""

    MAX_LENGTH = MAX_LINE
    totalHeadersSize = MAX_HEAD
    maxHeaders = MAX_HEADERS

    #: Set once the connection is refused: nothing more of it is read.
    refused = False
    #: Whether any byte has arrived yet (the first read is checked for TLS).
    _read_any = False
    _head_deadline: IDelayedCall | None = None
    _linger: IDelayedCall | None = None
    #: Since when the connection has been waiting for a request (see ``waiting_since``).
    _idle_since = 0.0

    # -- connection life ---------------------------------------------------------

    def connectionMade(self) -> None:
        super().connectionMade()
        self._idle_since = time.monotonic()
        self.site.connections.opened(self)
        self._start_head_deadline()

    def connectionLost(self, reason: object) -> None:
        self.site.connections.closed(self)
        for call in (self._head_deadline, self._linger):
            if call is not None and call.active():
                call.cancel()
        self._head_deadline = self._linger = None
        super().connectionLost(reason)

    def waiting_since(self) -> float | None:
        """Since when this connection has waited for a request; None while it is busy with one.

        A refused connection has waited longest of all: it is closed first.
        """
        if self.refused:
            return 0.0
        if self._handlingRequest or not self.line_mode:
            return None
        return self._idle_since

    def evict(self) -> None:
        """Close now, to make room for a new connection (``Connections``)."""
        self.transport.abortConnection()

    def requestDone(self, request: http.Request) -> None:
        self._idle_since = time.monotonic()
        super().requestDone(request)

    # -- reading -----------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.refused:
            return  # lingering: read and dropped
        if not self._read_any:
            self._read_any = True
            if data.startswith(TLS_HANDSHAKE):
                self.refuse(BadRequest("Bad Request: this port speaks plain HTTP, not TLS."))
                return
        lane = self.site.fast_lane
        if lane is not None and self._idle() and lane.answer(self, data):
            self.resetTimeout()
            self._stop_head_deadline()  # the first request's, started with the connection
            self._idle_since = time.monotonic()
            return
        if self._head_deadline is None and self.line_mode and not self._handlingRequest:
            self._start_head_deadline()
        super().dataReceived(data)

    def _idle(self) -> bool:
        """Whether the next bytes start a new request that nothing else is waiting on."""
        return (
            not self.requests
            and bool(self.persistent)
            and bool(self.line_mode)
            and not self._buffer
            and not self._waitingForTransport
        )

    def lineReceived(self, line: bytes) -> None:
        if self.refused:
            return
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self.refuse(_head_too_large(f"the request head is over {self.totalHeadersSize} bytes"))
            return
        super().lineReceived(line)

    def headerReceived(self, line: bytes) -> bool:
        if self.refused:
            return False
        if self._receivedHeaderCount >= self.maxHeaders:
            self.refuse(_head_too_large(f"the request has more than {self.maxHeaders} headers"))
            return False
        return super().headerReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        if self.requests:  # the request line is parsed: this is a header
            self.refuse(_head_too_large(f"a header line is over {self.MAX_LENGTH} bytes"))
        else:
            self.refuse(
                MinistryError(
                    f"URI Too Long: the request line is over {self.MAX_LENGTH} bytes.", status=414
                )
            )

    def allHeadersReceived(self) -> None:
        if self.refused:
            return
        self._stop_head_deadline()
        request = self.requests[-1]
        try:
            _check_expectation(request.requestHeaders.getRawHeaders(b"expect"))
            if self.length != 0:  # a declared length, or chunked (None)
                request.body_plan = self.site.plan_body(
                    self._command, self._path, request.requestHeaders, self.length
                )
        except MinistryError as error:
            self.refuse(error)
            return
        super().allHeadersReceived()  # may send 100 Continue

    def allContentReceived(self) -> None:
        if not self.refused:
            super().allContentReceived()

    def rawDataReceived(self, data: bytes) -> None:
        if not self.refused:
            super().rawDataReceived(data)

    def _respondToBadRequestAndDisconnect(self) -> None:
        """twisted.web's answer to what it cannot parse, with a reason."""
        self.refuse(
            BadRequest(
                "Bad Request: the request line, a header or the chunked body is not valid HTTP/1.1."
            )
        )

    # -- the head deadline and refusals --------------------------------------------

    def _start_head_deadline(self) -> None:
        self._head_deadline = self.callLater(
            self.site.connections.limits.header_timeout, self._head_late
        )

    def _stop_head_deadline(self) -> None:
        if self._head_deadline is not None:
            if self._head_deadline.active():
                self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        if not self.requests and not self._buffer:  # not a byte of a request: nothing to answer
            self.transport.loseConnection()
            return
        timeout = self.site.connections.limits.header_timeout
        self.refuse(
            MinistryError(
                f"Request Timeout: the request head did not arrive within {timeout:g} s.",
                status=408,
            )
        )

    def refuse(self, error: MinistryError) -> None:
        """Answer ``error`` now and end the connection, reading no more of the request."""
        if self.refused:
            return
        self.refused = True
        self._stop_head_deadline()
        self.setTimeout(None)
        log.info(
            "Refused {peer}: {status} {reason}",
            peer=str(self.transport.getPeer()),
            status=error.status,
            reason=error.message,
        )
        self.transport.write(refusal_bytes(error))
        half_close = getattr(self.transport, "loseWriteConnection", None)
        if half_close is None:
            self.transport.loseConnection()
            return
        half_close()
        self._linger = self.callLater(LINGER_SECONDS, self.transport.abortConnection)


def _check_expectation(values: list[bytes] | None) -> None:
    """Refuse an ``Expect`` other than ``100-continue``, which the server cannot meet."""
    if values and any(value.strip().lower() != b"100-continue" for value in values):
        raise MinistryError(
            "Expectation Failed: only 'Expect: 100-continue' is understood.", status=417
        )

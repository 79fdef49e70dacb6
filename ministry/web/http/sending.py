"""Response bodies out of the process with bounded memory and few system calls.

Two kinds of large body leave the index: stored files (a wheel, a 1 GiB
sdist) and big cached pages (``/simple/`` at 100,000 projects is 4 MB).
Writing either in one piece would make the transport keep its own copy per
connection until the client has read it all, so 32 clients of ``/simple/``
cost 32 copies. Here a body goes out piece by piece as the socket takes it
(a push producer), so one connection holds at most about one
:data:`CHUNK` of its own.

Twisted has no sendfile(2) (its static producers read 64 KiB at a time and
are pulled by a cooperator), and its transports copy what they are given
into their own buffer and send it 128 KiB per call. When the connection is a
plain TCP socket, :class:`BodyProducer` writes to the socket itself: every
time the transport resumes us its buffer is empty (the ``IPushProducer``
contract of ``HTTPChannel``), so a file goes with ``os.sendfile`` and a page
with one ``os.write`` of a memoryview, as much as the socket takes, without
a copy in Python; when the socket is full, one chunk goes through the
transport's buffer, which pauses us until it drains. The first chunk always
goes through the transport, behind the response headers. Over TLS, or the
in-memory transports of the tests, every chunk goes through the transport.
"""

from __future__ import annotations

import contextlib
import os
from typing import BinaryIO

from twisted.internet import tcp
from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET

#: Bytes per write through the transport: above its 64 KiB buffer mark, so
#: one write pauses us, and small enough that a connection holds little.
CHUNK = 256 * 1024


def _plain_tcp(transport: object) -> tcp.Connection | None:
    """The transport if it is a plain TCP connection (not TLS, not in memory), else None."""
    return transport if isinstance(transport, tcp.Connection) else None


def write_at_once(transport: object, data: bytes) -> None:
    """Write a small answer: to the socket at once when nothing waits ahead of it.

    Through the transport, a write waits for the reactor's next turn and
    costs two more system calls (write notifications switched on, then off);
    for a fast-lane answer that was a fifth of its CPU. Bytes the socket does
    not take go through the transport, behind nothing.
    """
    tcp_transport = _plain_tcp(transport)
    if (
        tcp_transport is not None
        and tcp_transport.connected
        and not tcp_transport.disconnecting
        and not tcp_transport._tempDataLen
        and len(tcp_transport.dataBuffer) <= tcp_transport.offset
    ):
        # Full (BlockingIOError) or broken: the transport sees to it.
        with contextlib.suppress(OSError):
            data = data[os.write(tcp_transport.fileno(), data) :]
    if data:
        transport.write(data)


class BodyProducer:
    """Sends ``length`` bytes from ``offset`` of a file or a bytes object, then finishes.

    A push producer registered with the request (see the module docstring).
    """

    def __init__(
        self,
        request: IRequest,
        source: bytes | BinaryIO,
        offset: int,
        length: int,
    ) -> None:
        self.request = request
        self.source = source
        self.offset = offset
        self.remaining = length
        self.paused = False
        self.stopped = False
        #: Whether the transport's buffer is known to be empty (we were
        #: resumed and have not written to it since): direct writes may go ahead.
        self.drained = False
        self._file_fd = None if isinstance(source, bytes) else source.fileno()
        transport = _plain_tcp(getattr(getattr(request, "channel", None), "transport", None))
        self._socket_fd = None if transport is None else transport.fileno()
        #: Bytes per write through the transport. Writing past the socket, a
        #: write only needs to be big enough to pause us (just over the
        #: transport's buffer mark): the rest goes straight to the socket.
        self._chunk = CHUNK if transport is None else min(CHUNK, transport.bufferSize + 1)

    def start(self) -> int:
        """Begin sending; returns ``NOT_DONE_YET`` for the resource's render."""
        self.request.registerProducer(self, True)
        self._produce()
        return NOT_DONE_YET

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.drained = True
        self._produce()

    def stopProducing(self) -> None:
        """The connection is gone: stop, and let go of the file."""
        self.stopped = True
        self._close()

    def _produce(self) -> None:
        while not self.paused and not self.stopped and self.remaining:
            if self.drained and self._socket_fd is not None and self._send_direct():
                continue
            if self.stopped:
                return
            self.drained = False
            data = self._read(min(self._chunk, self.remaining))
            if not data:  # the file shrank under us: end the connection
                self._abort()
                return
            self.offset += len(data)
            self.remaining -= len(data)
            self.request.write(data)
        if not self.remaining and not self.stopped:
            self.stopped = True
            self._close()
            self.request.unregisterProducer()
            self.request.finish()

    def _send_direct(self) -> bool:
        """Send what the socket takes, past the transport; False when it takes nothing now."""
        assert self._socket_fd is not None
        try:
            if self._file_fd is None:
                span = memoryview(self.source)[self.offset : self.offset + self.remaining]
                sent = os.write(self._socket_fd, span)
            else:
                sent = os.sendfile(self._socket_fd, self._file_fd, self.offset, self.remaining)
        except BlockingIOError:
            return False
        except OSError:
            self._abort()
            return False
        if sent == 0:  # end of file before ``length``: the file shrank
            self._abort()
            return False
        self.offset += sent
        self.remaining -= sent
        self.request.sentLength += sent
        return True

    def _read(self, size: int) -> bytes:
        if isinstance(self.source, bytes):
            return self.source[self.offset : self.offset + size]
        return os.pread(self._file_fd, size, self.offset)

    def _abort(self) -> None:
        """Cut the connection: the client must not take a short body as whole."""
        self.stopped = True
        self._close()
        channel = self.request.channel
        if channel is not None:  # None: the connection is already gone
            self.request.unregisterProducer()
            channel.transport.abortConnection()

    def _close(self) -> None:
        if not isinstance(self.source, bytes):
            self.source.close()


def send_bytes(request: IRequest, body: bytes) -> bytes | int:
    """The body for a render method: returned whole when small, else produced in chunks."""
    request.setHeader(b"content-length", b"%d" % len(body))
    if len(body) <= CHUNK:
        return body
    return BodyProducer(request, body, 0, len(body)).start()


def send_file(request: IRequest, handle: BinaryIO, offset: int, length: int) -> int:
    """Send a span of an open file (which is closed when done); ``NOT_DONE_YET``."""
    request.setHeader(b"content-length", b"%d" % length)
    return BodyProducer(request, handle, offset, length).start()

"""HTTP over raw sockets, for tests of what the server does with bytes no client library sends.

:func:`connect` opens a socket from a chosen loopback source address (the
whole of 127.0.0.0/8 reaches the daemon on 127.0.0.1, so each address is a
distinct client for its per-client caps); :func:`read_response` reads one
response off it, and fails if the server closed without one.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def connect(port: int, source: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
    """A connection to the daemon on 127.0.0.1:``port`` from ``source``."""
    return socket.create_connection(("127.0.0.1", port), timeout, source_address=(source, 0))


def read_response(sock: socket.socket) -> RawResponse:
    """The next response on ``sock`` (its body by Content-Length)."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without an answer (after {buffer!r})"
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _read_chunked(sock, body)
    else:
        body = _read_exactly(sock, body, int(headers.get("content-length", "0")))
    _, status, reason = [*status_line.split(" ", 2), ""][:3]
    return RawResponse(int(status), reason, headers, body)


def _read_exactly(sock: socket.socket, data: bytes, length: int) -> bytes:
    while len(data) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data[:length]


def _read_chunked(sock: socket.socket, data: bytes) -> bytes:
    body = b""
    while True:
        while b"\r\n" not in data:
            data += sock.recv(65536)
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(data) < size + 2:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection inside a chunk"
            data += chunk
        if size == 0:
            return body
        body, data = body + data[:size], data[size + 2 :]


def exchange(port: int, data: bytes, source: str = "127.0.0.1") -> RawResponse:
    """Send ``data`` on a new connection and read the one response."""
    with connect(port, source) as sock:
        sock.sendall(data)
        return read_response(sock)


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes ``sock`` within ``timeout`` seconds (reading what it sends)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True

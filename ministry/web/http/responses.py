"""How refusals and small answers are written, in one place.

Every refusal carries its reason twice: in the status line, which twine,
pip and uv print, and in a plain-text body, which curl and browsers show.
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import datetimeToString
from twisted.web.iweb import IRequest

from ministry.core.auth import CHALLENGE
from ministry.core.errors import MinistryError, Unauthorized

log = Logger()


def _status_phrase(message: str) -> bytes:
    """A reason phrase safe for a status line: one line, latin-1, bounded."""
    line = " ".join(message.split())[:300]
    return line.encode("latin-1", errors="replace")


def refuse(request: IRequest, error: MinistryError) -> bytes:
    """Answer with the error's status and its message in line and body."""
    request.setResponseCode(error.status, _status_phrase(error.message))
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    if isinstance(error, Unauthorized):
        request.setHeader(b"www-authenticate", CHALLENGE.encode())
    return (error.message + "\n").encode("utf-8")


def finish_refused(request: IRequest, failure: Failure, check: str) -> None:
    """End a request whose ``check`` failed: a domain error as its refusal, else a logged 500."""
    if failure.check(MinistryError):
        request.write(refuse(request, failure.value))
    else:
        log.failure("{check} failed", failure, check=check)
        request.setResponseCode(500)
    request.finish()


def redirect(request: IRequest, location: str) -> bytes:
    """A permanent redirect, as PEP 503 asks for non-canonical URLs."""
    request.setResponseCode(301)
    request.setHeader(b"location", location.encode("utf-8"))
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return f"Moved to {location}\n".encode()


def refusal_bytes(error: MinistryError) -> bytes:
    """A whole refusal as bytes, for the transport to write before a Request exists.

    For refusals made from the request head, or before it (a bad request line,
    a body over the cap, too many connections): the same status line, body and
    challenge as :func:`refuse`, and ``Connection: close``, as the connection
    ends after it.
    """
    body = (error.message + "\n").encode("utf-8")
    head = [
        b"HTTP/1.1 %d %s" % (error.status, _status_phrase(error.message)),
        b"Date: " + datetimeToString(),
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Length: %d" % len(body),
        b"Cache-Control: no-store",
        b"Connection: close",
    ]
    if isinstance(error, Unauthorized):
        head.append(b"WWW-Authenticate: " + CHALLENGE.encode())
    return b"\r\n".join(head) + b"\r\n\r\n" + body

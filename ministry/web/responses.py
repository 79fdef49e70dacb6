"""How refusals and small answers are written, in one place.

Every refusal carries its reason twice: in the status line, which twine,
pip and uv print, and in a plain-text body, which curl and browsers show.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

from ministry.core.auth import CHALLENGE
from ministry.core.errors import MinistryError, Unauthorized


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


def redirect(request: IRequest, location: str) -> bytes:
    """A permanent redirect, as PEP 503 asks for non-canonical URLs."""
    request.setResponseCode(301)
    request.setHeader(b"location", location.encode("utf-8"))
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return f"Moved to {location}\n".encode()

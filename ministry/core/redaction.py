"""Credentials in configured URLs: split off to be sent, hidden wherever text is shown.

An ``--upstream`` or ``--redis`` URL may carry ``user:password@``. The
password must reach the one host it is for (as an ``Authorization`` header,
never inside a URL that ends up in a message) and nothing else: not the
log, ``/health``, ``/metrics``, a page or an error body. Everything that
shows a configured URL, or a message that might quote one, goes through
:func:`redact_url` or :func:`redact`; this module is the only place that
knows how.

A user name alone (``https://TOKEN@host/``) is hidden too: it is how many
registries take a token.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

#: What a hidden secret looks like.
REDACTED = "***"

# scheme://userinfo@ ; the userinfo ends at the last "@" before the path.
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#]*)@")


@dataclass(frozen=True)
class Credentials:
    """A user name and password taken out of a URL (percent-decoded)."""

    username: str
    password: str

    def __repr__(self) -> str:  # never the password, even in a traceback
        return f"Credentials(username={self.username!r}, password={REDACTED!r})"

    def basic(self) -> bytes:
        """The ``Authorization`` header value (RFC 7617)."""
        pair = f"{self.username}:{self.password}".encode()
        return b"Basic " + base64.b64encode(pair)


def split_credentials(url: str) -> tuple[str, Credentials | None]:
    """``url`` without its ``user:password@``, and those credentials (None if it had none)."""
    match = _USERINFO.match(url)
    if match is None:
        return url, None
    username, _, password = match.group("userinfo").partition(":")
    bare = match.group("scheme") + url[match.end() :]
    return bare, Credentials(unquote(username), unquote(password))


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of a URL without credentials: where credentials may go."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or ""), port or {"http": 80, "https": 443}.get(scheme)


def redact_url(url: str) -> str:
    """``url`` fit to show: ``https://user:***@host/...``, or ``https://***@host/...``."""
    match = _USERINFO.match(url)
    if match is None:
        return url
    username, colon, _ = match.group("userinfo").partition(":")
    shown = f"{username}:{REDACTED}" if colon else REDACTED
    return f"{match.group('scheme')}{shown}@{url[match.end() :]}"


def redact(text: str, urls: Iterable[str]) -> str:
    """``text`` with the secrets of every URL of ``urls`` hidden.

    For messages that may quote a configured URL in any form (whole, in a
    ``repr``, or a password percent-decoded by a parser).
    """
    for url in urls:
        text = text.replace(url, redact_url(url))
        for secret in _secrets(url):
            text = text.replace(secret, REDACTED)
    return text


def _secrets(url: str) -> set[str]:
    """The password of ``url`` (or its user name when there is no password), both spellings."""
    match = _USERINFO.match(url)
    if match is None:
        return set()
    username, colon, password = match.group("userinfo").partition(":")
    secret = password if colon else username
    return {value for value in (secret, unquote(secret)) if value}

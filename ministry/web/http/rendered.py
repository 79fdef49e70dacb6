"""A rendered page and how it is sent: ETag, 304, Vary and serial headers.

Some pages print this server's URL (install commands, the JSON API's links).
Without ``--base-url`` that URL comes from the request's ``Host`` header,
which any client can set to anything, so such a page is rendered once with
:data:`SERVER_MARK` where the URL goes and cached as one :class:`ServerPage`,
whatever the hosts asking for it; each request splices its own URL in
(:meth:`ServerPage.for_server`). Only the page up to the last mark is copied
per request: the install commands come before a README, so a big README is
sent from the one cached copy.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from ministry.web.http.fastlane import Answer, FixedAnswer
from ministry.web.http.sending import CHUNK, BodyProducer, send_bytes

#: Stands for the server's URL in a page rendered for every URL. Random per
#: process, so no uploaded text can contain it; characters that need no
#: escaping in HTML, JSON or a shell, like every URL it stands for
#: (``ministry.web.urls`` refuses other hosts).
SERVER_MARK = f"http://{secrets.token_hex(12)}.invalid"


def _tag(*parts: bytes) -> bytes:
    digest = hashlib.blake2b(digest_size=12)
    for part in parts:
        digest.update(b"%d:" % len(part))
        digest.update(part)
    return f'"{digest.hexdigest()}"'.encode()


@dataclass(frozen=True)
class Page:
    """Response bytes with the headers computed once, when rendered.

    ``lead`` (usually empty) goes out before ``body``: the per-request start
    of a :class:`ServerPage`, so the shared rest is never copied.
    """

    body: bytes
    content_type: bytes
    etag: bytes
    serial: int | None = None
    lead: bytes = b""

    @classmethod
    def of(cls, body: bytes, content_type: str, serial: int | None = None) -> Page:
        tag = hashlib.blake2b(body, digest_size=12).hexdigest()
        return cls(body, content_type.encode(), f'"{tag}"'.encode(), serial)

    @property
    def length(self) -> int:
        return len(self.lead) + len(self.body)

    def cache_weight(self) -> int:
        return self.length


@dataclass(frozen=True)
class ServerPage:
    """A page printing the server's URL, cached once for every URL it may print."""

    #: The page up to its last :data:`SERVER_MARK`, split at each mark.
    lead_parts: tuple[bytes, ...]
    #: The rest, after the last mark, sent as it is.
    tail: bytes
    content_type: bytes
    #: The page's ETag before the URL is spliced in.
    digest: bytes
    serial: int | None = None

    @classmethod
    def of(cls, page: Page) -> ServerPage:
        """Split a page rendered with :data:`SERVER_MARK` for its URL."""
        *lead, tail = page.body.split(SERVER_MARK.encode())
        # The rendered body's tag already names these parts: a big page is hashed once.
        return cls(tuple(lead), tail, page.content_type, page.etag, page.serial)

    def cache_weight(self) -> int:
        return len(self.tail) + sum(len(part) for part in self.lead_parts)

    def for_server(self, server: str) -> Page:
        """The page as sent to a client that reaches this server at ``server``."""
        url = server.encode("ascii")
        lead = url.join(self.lead_parts) + url if self.lead_parts else b""
        return Page(self.tail, self.content_type, _tag(self.digest, url), self.serial, lead)


class PageResponse(Resource, FixedAnswer):
    """The answer with a cached page, as a leaf resource for any router.

    A resource rather than bytes so that a big page can be produced in
    chunks (``ministry.web.http.sending``) from Klein routes, the fast path and
    plain resources alike. ``no-cache`` lets clients keep the page but
    revalidate every time, which is one cheap 304 here and means a fresh
    upload is seen at once.
    """

    isLeaf = True

    def __init__(
        self, page: Page, cache_control: bytes = b"no-cache", vary_accept: bool = True
    ) -> None:
        super().__init__()
        self.page = page
        self.cache_control = cache_control
        self.vary_accept = vary_accept

    def fixed_headers(self) -> list[tuple[bytes, bytes]]:
        page = self.page
        headers = [
            (b"Content-Type", page.content_type),
            (b"ETag", page.etag),
            (b"Cache-Control", self.cache_control),
        ]
        if self.vary_accept:
            headers.append((b"Vary", b"Accept"))
        if page.serial is not None:
            headers.append((b"X-Pypi-Last-Serial", b"%d" % page.serial))
        return headers

    def fixed_answer(self) -> Answer | None:
        page = self.page
        return (self.fixed_headers(), page.lead + page.body) if page.length <= CHUNK else None

    def _headers(self, request: IRequest) -> bool:
        """Set the headers; True when the client's copy is current (304)."""
        for name, value in self.fixed_headers():
            request.setHeader(name, value)
        if_none_match = request.getHeader(b"if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, self.page.etag):
            request.setResponseCode(304)
            return True
        return False

    def render_GET(self, request: IRequest) -> bytes | int:
        if self._headers(request):
            return b""
        page = self.page
        if not page.lead:
            return send_bytes(request, page.body)
        request.setHeader(b"content-length", b"%d" % page.length)
        if page.length <= CHUNK:
            return page.lead + page.body
        request.write(page.lead)
        return BodyProducer(request, page.body, 0, len(page.body)).start()

    def render_HEAD(self, request: IRequest) -> bytes:
        if not self._headers(request):
            request.setHeader(b"content-length", b"%d" % self.page.length)
        return b""


def accept_of(request: IRequest) -> str | None:
    """The request's ``Accept`` header as text for ``ministry.core.negotiate``, or None."""
    accept = request.getHeader(b"accept")
    return accept.decode("latin-1") if accept else None


def etag_matches(header: bytes, etag: bytes) -> bool:
    """Whether an If-None-Match (or If-Range) header names ``etag``; weak tags count."""
    return any(part.strip().removeprefix(b"W/") in (etag, b"*") for part in header.split(b","))

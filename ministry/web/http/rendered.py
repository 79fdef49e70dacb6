"""A rendered page and how it is sent: ETag, 304, Vary and serial headers.

A big page also keeps a gzip copy of itself (:meth:`Page.with_gzip`), sent
to clients whose ``Accept-Encoding`` takes gzip (pip and uv send it for
simple pages): a 2.7 MB simple page is 0.7 MB compressed, and its rate is
bound by the bytes. The copy is made once per page change, in a thread, and
counted in the page cache's bound; file downloads never get one.

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

import gzip
import hashlib
import secrets
from dataclasses import dataclass, replace

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from werkzeug.http import parse_accept_header

from ministry.web.http.fastlane import Answer, FixedAnswer
from ministry.web.http.sending import CHUNK, BodyProducer, send_bytes

#: Stands for the server's URL in a page rendered for every URL. Random per
#: process, so no uploaded text can contain it; characters that need no
#: escaping in HTML, JSON or a shell, like every URL it stands for
#: (``ministry.web.urls`` refuses other hosts).
SERVER_MARK = f"http://{secrets.token_hex(12)}.invalid"

#: Pages from this size get a gzip copy. Below it a page fits in one TCP
#: initial window (10 segments, about 14.6 kB: RFC 6928), so it reaches the
#: client in one round trip either way; compressing it would only add a
#: second copy to the cache, a header to parse per request and ``Vary:
#: Accept-Encoding`` to every client's cache, for no time saved.
GZIP_MIN = 16 * 1024
#: zlib's default level: level 9 saved under 1% more on simple pages, for up
#: to twice the CPU.
GZIP_LEVEL = 6
GZIP = b"gzip"


def _body_tag(body: bytes) -> bytes:
    """A strong ETag naming exactly these bytes."""
    return f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'.encode()


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
    #: The ``Content-Encoding`` of ``body``: empty, or ``gzip`` for a copy.
    encoding: bytes = b""
    #: The same page compressed (:meth:`with_gzip`), with an ETag of its own.
    gzipped: Page | None = None

    @classmethod
    def of(cls, body: bytes, content_type: str, serial: int | None = None) -> Page:
        return cls(body, content_type.encode(), _body_tag(body), serial)

    @property
    def length(self) -> int:
        return len(self.lead) + len(self.body)

    def cache_weight(self) -> int:
        """Both copies count against the cache's bound."""
        return self.length + (self.gzipped.length if self.gzipped is not None else 0)

    def wants_gzip(self) -> bool:
        """Whether :meth:`with_gzip` would pay: a big page not compressed yet.

        A page with a ``lead`` is spliced per request, so it has no fixed bytes to compress.
        """
        return (
            len(self.body) >= GZIP_MIN and not self.lead and not self.encoding and not self.gzipped
        )

    def with_gzip(self) -> Page:
        """This page with its gzip copy: 100-150 ms of CPU at 3 MB, so call it in a thread.

        The copy is tagged by its own bytes (``mtime=0``: the same page
        compresses to the same bytes each time), so its ETag never names the
        identity body: a cache holding one copy is never told it has the other.
        """
        compressed = gzip.compress(self.body, compresslevel=GZIP_LEVEL, mtime=0)
        copy = Page(compressed, self.content_type, _body_tag(compressed), self.serial, b"", GZIP)
        return replace(self, gzipped=copy)


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

    ``accept_encoding`` is the request's header: a page with a gzip copy
    sends it to a client that takes gzip (:func:`accepts_gzip`), and both
    copies say ``Vary: Accept-Encoding``. A revalidation naming either
    copy's ETag is a 304 with that ETag and no ``Content-Encoding``: the
    client's copy is current, whichever it holds, and a cache that merges a
    304's headers into what it stored must not be told its body changed coding.
    """

    isLeaf = True

    def __init__(
        self,
        page: Page,
        cache_control: bytes = b"no-cache",
        vary_accept: bool = True,
        accept_encoding: bytes | None = None,
    ) -> None:
        super().__init__()
        self.page = page
        #: The copy a 200 sends: the gzip one when there is one and the client takes it.
        self.sent = page
        if page.gzipped is not None and accepts_gzip(accept_encoding):
            self.sent = page.gzipped
        self.cache_control = cache_control
        self.vary_accept = vary_accept

    def fixed_headers(self) -> list[tuple[bytes, bytes]]:
        return self._headers_of(self.sent)

    def _headers_of(self, copy: Page, encoded: bool = True) -> list[tuple[bytes, bytes]]:
        """The headers for ``copy``; with ``encoded`` False, no ``Content-Encoding`` (a 304)."""
        headers = [
            (b"Content-Type", copy.content_type),
            (b"ETag", copy.etag),
            (b"Cache-Control", self.cache_control),
        ]
        if encoded and copy.encoding:
            headers.append((b"Content-Encoding", copy.encoding))
        vary = [b"Accept"] if self.vary_accept else []
        if self.page.gzipped is not None:
            vary.append(b"Accept-Encoding")
        if vary:
            headers.append((b"Vary", b", ".join(vary)))
        if copy.serial is not None:
            headers.append((b"X-Pypi-Last-Serial", b"%d" % copy.serial))
        return headers

    def fixed_answer(self) -> Answer | None:
        sent = self.sent
        return (self.fixed_headers(), sent.lead + sent.body) if sent.length <= CHUNK else None

    def _headers(self, request: IRequest) -> bool:
        """Set the headers; True when the client's copy is current (304)."""
        if_none_match = request.getHeader(b"if-none-match")
        current = None
        if if_none_match is not None:
            copies = (self.page, self.page.gzipped)
            matching = (c for c in copies if c is not None and etag_matches(if_none_match, c.etag))
            current = next(matching, None)
        for name, value in self._headers_of(current or self.sent, current is None):
            request.setHeader(name, value)
        if current is not None:
            request.setResponseCode(304)
            return True
        return False

    def render_GET(self, request: IRequest) -> bytes | int:
        if self._headers(request):
            return b""
        sent = self.sent
        if not sent.lead:
            return send_bytes(request, sent.body)
        request.setHeader(b"content-length", b"%d" % sent.length)
        if sent.length <= CHUNK:
            return sent.lead + sent.body
        request.write(sent.lead)
        return BodyProducer(request, sent.body, 0, len(sent.body)).start()

    def render_HEAD(self, request: IRequest) -> bytes:
        if not self._headers(request):
            request.setHeader(b"content-length", b"%d" % self.sent.length)
        return b""


def accept_of(request: IRequest) -> str | None:
    """The request's ``Accept`` header as text for ``ministry.core.negotiate``, or None."""
    accept = request.getHeader(b"accept")
    return accept.decode("latin-1") if accept else None


def etag_matches(header: bytes, etag: bytes) -> bool:
    """Whether an If-None-Match (or If-Range) header names ``etag``; weak tags count."""
    return any(part.strip().removeprefix(b"W/") in (etag, b"*") for part in header.split(b","))


def accepts_gzip(accept_encoding: bytes | None) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip, q-values honoured (RFC 9110 12.5.3).

    werkzeug's parser (Klein's own dependency) lets the most specific entry
    decide: ``gzip;q=0`` and ``gzip;q=0, *`` refuse gzip, ``*`` takes it,
    ``br`` or ``identity`` alone do not. No header at all gets the identity
    body: RFC 9110 would allow any coding then, but a client that sends none
    (curl without ``--compressed``) may not decode one.
    """
    if not accept_encoding:
        return False
    return parse_accept_header(accept_encoding.decode("latin-1")).quality("gzip") > 0

"""A rendered page and how it is sent: ETag, 304, Vary and serial headers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from ministry.web.fastlane import Answer, FixedAnswer
from ministry.web.sending import CHUNK, send_bytes


@dataclass(frozen=True)
class Page:
    """Response bytes with the headers computed once, when rendered."""

    body: bytes
    content_type: bytes
    etag: bytes
    serial: int | None = None

    @classmethod
    def of(cls, body: bytes, content_type: str, serial: int | None = None) -> Page:
        tag = hashlib.blake2b(body, digest_size=12).hexdigest()
        return cls(body, content_type.encode(), f'"{tag}"'.encode(), serial)


class PageResponse(Resource, FixedAnswer):
    """The answer with a cached page, as a leaf resource for any router.

    A resource rather than bytes so that a big page can be produced in
    chunks (``ministry.web.sending``) from Klein routes, the fast path and
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
        body = self.page.body
        return (self.fixed_headers(), body) if len(body) <= CHUNK else None

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
        return send_bytes(request, self.page.body)

    def render_HEAD(self, request: IRequest) -> bytes:
        if not self._headers(request):
            request.setHeader(b"content-length", b"%d" % len(self.page.body))
        return b""


def etag_matches(header: bytes, etag: bytes) -> bool:
    """Whether an If-None-Match (or If-Range) header names ``etag``; weak tags count."""
    return any(part.strip().removeprefix(b"W/") in (etag, b"*") for part in header.split(b","))

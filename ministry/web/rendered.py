"""A rendered page and how it is sent: ETag, 304, Vary and serial headers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from twisted.web.iweb import IRequest


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


def send_page(
    request: IRequest, page: Page, cache_control: bytes = b"no-cache", vary_accept: bool = True
) -> bytes:
    """Write a cached page's headers and return its body (or nothing, for a 304).

    ``no-cache`` lets clients keep the page but revalidate every time, which
    is one cheap 304 here and means a fresh upload is seen at once.
    """
    request.setHeader(b"content-type", page.content_type)
    request.setHeader(b"etag", page.etag)
    request.setHeader(b"cache-control", cache_control)
    if vary_accept:
        request.setHeader(b"vary", b"Accept")
    if page.serial is not None:
        request.setHeader(b"x-pypi-last-serial", str(page.serial).encode())
    if_none_match = request.getHeader(b"if-none-match")
    if if_none_match is not None and etag_matches(if_none_match, page.etag):
        request.setResponseCode(304)
        return b""
    return page.body


def etag_matches(header: bytes, etag: bytes) -> bool:
    """Whether an If-None-Match (or If-Range) header names ``etag``; weak tags count."""
    return any(part.strip().removeprefix(b"W/") in (etag, b"*") for part in header.split(b","))

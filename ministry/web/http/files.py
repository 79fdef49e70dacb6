"""Sending stored distribution files: types, ranges, validators, no encoding.

``twisted.web.static.File`` guesses types and encodings from the name (a
``.tar.gz`` would go out as ``Content-Encoding: gzip``, which makes clients
unpack it and then fail the hash check), and it stats the disk to build its
validators. Here everything comes from the file record: the type from the
extension we accepted, the ETag from the sha256, the length from the size.
One ``open`` is the only disk work on this path; the bytes go out through
``ministry.web.http.sending`` (sendfile where it can).

Behind nginx, ``--x-accel-redirect PREFIX`` hands the sending to it: the
answer carries the headers and ``X-Accel-Redirect: PREFIX<path below the data
directory>`` with no body, and nginx sends the file from an ``internal``
location aliased to the data directory (see the README).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote

from twisted.web import resource
from twisted.web.iweb import IRequest

from ministry.stores.blobs import FilesystemBlobStore
from ministry.web.http.fastlane import Answer, FixedAnswer
from ministry.web.http.rendered import etag_matches
from ministry.web.http.sending import send_file

IMMUTABLE = b"public, max-age=31536000, immutable"

_TYPES = {
    ".whl": b"application/zip",
    ".zip": b"application/zip",
    ".tar.gz": b"application/gzip",
}

_RANGE = re.compile(rb"^bytes=(\d*)-(\d*)$")


def content_type_for(filename: str) -> bytes:
    """The Content-Type of a distribution file, from its extension."""
    for extension, content_type in _TYPES.items():
        if filename.endswith(extension):
            return content_type
    return b"application/octet-stream"


def sha256_etag(hexdigest: str) -> bytes:
    """The ETag of immutable bytes known by their sha256: the digest, quoted.

    Every copy of a file (uploaded, proxied, mirrored) has the same tag, so a
    client's cached copy stays valid whichever path served it.
    """
    return f'"{hexdigest}"'.encode()


def parse_range(header: bytes, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of a single ``bytes=`` range, or None to send all.

    Several ranges or a malformed header are answered with the whole file,
    which RFC 9110 allows. An unsatisfiable range raises ValueError (416).
    """
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        length = min(int(last), size)
        if length == 0:
            raise ValueError("empty suffix range")
        return size - length, size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ValueError("range outside the file")
    return start, end


class Delivery(Protocol):
    """How stored files leave this process: one per kind of blob store.

    :class:`DiskDelivery` for a directory (sendfile, or X-Accel-Redirect to
    nginx); :class:`ministry.web.http.objects.ObjectDelivery` for a bucket
    (streamed through, or a redirect to a presigned URL). Callers hand over
    the blob store the file lives in, since uploads and proxied files live
    in different ones.
    """

    def file(
        self,
        blobs: Any,
        key: str,
        size: int,
        content_type: bytes,
        etag: bytes,
        modified: datetime,
    ) -> resource.Resource:
        """The resource of the committed blob ``key`` of ``blobs``."""


@dataclass(frozen=True)
class DiskDelivery:
    """Files of a :class:`~ministry.stores.blobs.FilesystemBlobStore`: sent here, or by nginx.

    ``accel_prefix`` is ``--x-accel-redirect``; ``root`` the directory its
    nginx location is aliased to, which holds every blob directory (the
    uploads' and ``upstream/files`` beside it: see ``ministry.backends.build_storage``).
    """

    accel_prefix: str | None = None
    root: str = ""

    def file(
        self,
        blobs: FilesystemBlobStore,
        key: str,
        size: int,
        content_type: bytes,
        etag: bytes,
        modified: datetime,
    ) -> StoredFile:
        """The resource of one stored file, read from its path under ``blobs``."""
        path = blobs.local_path(key)
        accel = None
        if self.accel_prefix is not None:
            inside = self.root + os.sep
            below = (
                path[len(inside) :] if path.startswith(inside) else os.path.relpath(path, inside)
            )
            accel = (self.accel_prefix + quote(below.replace(os.sep, "/"))).encode()
        return StoredFile(path, size, content_type, etag, modified, accel)


#: Files sent by this process (no ``--x-accel-redirect``).
SEND_DIRECTLY = DiskDelivery()


class ImmutableFile(resource.Resource):
    """Immutable bytes of known size and validators: GET, HEAD, Range, If-Range, If-None-Match.

    Everything about an answer comes from the file record, so one class
    answers for every kind of storage; subclasses only say how the bytes of
    a span go out (:meth:`send`): from a local file (:class:`StoredFile`),
    or streamed from a bucket (:mod:`ministry.web.http.objects`). A HEAD
    never reads the bytes: the size is known.
    """

    isLeaf = True

    def __init__(self, size: int, content_type: bytes, etag: bytes, modified: datetime) -> None:
        super().__init__()
        self.size = size
        self.content_type = content_type
        self.etag = etag
        self.modified = modified
        self.last_modified = format_datetime(modified, usegmt=True).encode()

    def fixed_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"Content-Type", self.content_type),
            (b"ETag", self.etag),
            (b"Last-Modified", self.last_modified),
            (b"Cache-Control", IMMUTABLE),
            (b"Accept-Ranges", b"bytes"),
        ]

    def _headers(self, request: IRequest) -> None:
        for name, value in self.fixed_headers():
            request.setHeader(name, value)

    def _if_range_holds(self, request: IRequest) -> bool:
        """Whether a Range may be honoured: no If-Range, or one naming this file."""
        condition = request.getHeader(b"if-range")
        if condition is None:
            return True
        if condition.startswith((b'"', b"W/")):
            return condition.strip() == self.etag
        try:
            return parsedate_to_datetime(condition.decode("latin-1")) >= self.modified.replace(
                microsecond=0
            )
        except (TypeError, ValueError):
            return False

    def render_HEAD(self, request: IRequest) -> bytes:
        self._headers(request)
        request.setHeader(b"content-length", b"%d" % self.size)
        return b""

    def render_GET(self, request: IRequest) -> bytes | int:
        self._headers(request)
        if_none_match = request.getHeader(b"if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, self.etag):
            request.setResponseCode(304)
            return b""
        return self._send_span(request)

    def _send_span(self, request: IRequest) -> bytes | int:
        """Send the span the Range asks for (if it holds), the whole file, or a 416."""
        span = None
        header = request.getHeader(b"range")
        if header is not None and self._if_range_holds(request):
            try:
                span = parse_range(header, self.size)
            except ValueError:
                request.setResponseCode(416)
                request.setHeader(b"content-range", f"bytes */{self.size}".encode())
                return b""
        return self.send(request, span)

    def send(self, request: IRequest, span: tuple[int, int] | None) -> bytes | int:
        """Send ``span`` (first and last byte), or the whole file for None."""
        raise NotImplementedError

    def partial(self, request: IRequest, span: tuple[int, int] | None) -> tuple[int, int]:
        """The (offset, length) to send; a 206 with its Content-Range for a span.

        Called by :meth:`send` once it knows the bytes can be had, so that a
        missing file is a plain 404.
        """
        if span is None:
            return 0, self.size
        first, last = span
        request.setResponseCode(206)
        request.setHeader(b"content-range", f"bytes {first}-{last}/{self.size}".encode())
        return first, last - first + 1


class StoredFile(ImmutableFile, FixedAnswer):
    """One immutable file on disk, sent with sendfile.

    With ``accel`` (the ``X-Accel-Redirect`` URI), nginx sends the bytes and
    answers Range itself; a matching ``If-None-Match`` is still a 304 here.
    """

    def __init__(
        self,
        path: str,
        size: int,
        content_type: bytes,
        etag: bytes,
        modified: datetime,
        accel: bytes | None = None,
    ) -> None:
        super().__init__(size, content_type, etag, modified)
        self.path = path
        self.accel = accel

    def fixed_headers(self) -> list[tuple[bytes, bytes]]:
        headers = super().fixed_headers()
        if self.accel is None:
            return headers
        # nginx says Accept-Ranges itself, and would say it twice
        return [(name, value) for name, value in headers if name != b"Accept-Ranges"]

    def fixed_answer(self) -> Answer | None:
        """Only the header-only answer that hands the file to nginx is fixed."""
        if self.accel is None:
            return None
        return [*self.fixed_headers(), (b"X-Accel-Redirect", self.accel)], b""

    def render_HEAD(self, request: IRequest) -> bytes:
        if self.accel is None:
            return super().render_HEAD(request)
        self._headers(request)
        request.setHeader(b"x-accel-redirect", self.accel)
        return b""

    def _send_span(self, request: IRequest) -> bytes | int:
        if self.accel is None:
            return super()._send_span(request)
        request.setHeader(b"x-accel-redirect", self.accel)
        return b""

    def send(self, request: IRequest, span: tuple[int, int] | None) -> bytes | int:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - the producer closes it
        except FileNotFoundError:
            request.setResponseCode(404, b"File missing from storage")
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"The file is listed but its bytes are missing from storage.\n"
        offset, length = self.partial(request, span)
        return send_file(request, handle, offset, length)


class InlineBytes(resource.Resource):
    """Small immutable bytes (a ``.metadata`` file) with the same validators."""

    isLeaf = True

    def __init__(self, body: bytes, content_type: bytes, etag: bytes) -> None:
        super().__init__()
        self.body = body
        self.content_type = content_type
        self.etag = etag

    def render_GET(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", self.content_type)
        request.setHeader(b"etag", self.etag)
        request.setHeader(b"cache-control", IMMUTABLE)
        if_none_match = request.getHeader(b"if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, self.etag):
            request.setResponseCode(304)
            return b""
        return self.body

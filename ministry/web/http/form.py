"""A multipart/form-data body parsed while it arrives, in bounded memory.

twisted.web would buffer the whole body and then parse it into memory again,
keeping one value per field; upload forms repeat fields (``classifiers``) and
carry files of a gigabyte. Instead the request hands each received chunk to a
:class:`StreamingForm`, which feeds ``multipart``'s push parser, keeps the
text fields (all values, in order), and writes the ``content`` file part
straight to a staging file while computing its md5, sha256 and blake2b-256.
Nothing here blocks for long: each chunk costs one parse step, one write and
three hash updates.

Whatever a body holds, it ends in a refusal with a reason (:attr:`StreamingForm.error`),
never in an exception out of :meth:`StreamingForm.write`: a syntax error is
400, a parser limit (parts, part headers) 413, a full disk while staging 507.
The request answers as soon as ``error`` is set, without reading the rest.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from multipart import (
    MultipartError,
    MultipartSegment,
    ParserError,
    ParserLimitReached,
    PushMultipartParser,
)

from ministry.core.errors import BadRequest, InsufficientStorage, MinistryError, TooLarge
from ministry.core.uploads import ReceivedFile

#: The form part that carries the distribution file.
FILE_FIELD = "content"
#: Largest body kept for a second, lenient parse (legacy ``register`` forms).
LENIENT_MAX = 1024 * 1024


def staging_failed(error: OSError) -> MinistryError:
    """The refusal for a staging write that failed: 507 for a full disk, else 503.

    Either way the client did nothing wrong and may try again; what was
    staged is removed when the request ends.
    """
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage(
            "Insufficient storage: the index's disk is full, so the upload was not "
            "stored. Try again once space has been freed."
        )
    return MinistryError(f"Could not stage the upload: {error.strerror}; try again.", status=503)


@dataclass(frozen=True)
class FormLimits:
    """Caps on the non-file parts of a form, which are held in memory."""

    max_field: int = 4 * 1024 * 1024  # a long description fits
    max_fields_total: int = 16 * 1024 * 1024
    max_parts: int = 2000


class StreamingForm:
    """The file-like ``request.content`` for multipart bodies.

    twisted.web calls ``write`` for each chunk, ``tell``/``seek`` once the body
    is complete, and ``close`` when the request ends or the connection drops.
    The upload handler calls :meth:`result`.
    """

    def __init__(
        self,
        boundary: str,
        new_staging_path: Callable[[], str],
        limits: FormLimits = FormLimits(),
    ) -> None:
        self._boundary = boundary
        self._parser = PushMultipartParser(boundary, max_segment_count=limits.max_parts)
        #: The body so far while it is small and holds no file: kept so that a
        #: legacy body with bare LF line endings can be parsed again leniently.
        self._small_body: bytearray | None = bytearray()
        self._lenient = False
        self._new_staging_path = new_staging_path
        self._limits = limits
        self._received = 0
        self._fields_bytes = 0
        self.fields: dict[str, list[str]] = {}
        self._segment: MultipartSegment | None = None
        self._buffer: bytearray | None = None
        self._file: BinaryIO | None = None
        self._file_name = ""
        self._hashes: tuple = ()
        self.staging_path: str | None = None
        self._received_file: ReceivedFile | None = None
        self.error: MinistryError | None = None

    # The file protocol twisted.web expects of request.content.

    def write(self, data: bytes) -> None:
        if self.error is not None:
            return
        self._received += len(data)
        if self._small_body is not None:
            self._small_body.extend(data)
            if len(self._small_body) > LENIENT_MAX:
                self._small_body = None
        if self._lenient:
            if self._small_body is None:
                self.fail(BadRequest("Malformed multipart/form-data body (CRLF expected)."))
            return
        syntax = self._feed(data)
        if syntax is not None:
            if self._small_body is not None and self.staging_path is None:
                self._lenient = True  # decided in result(), once the body is whole
                return
            self.fail(BadRequest(f"Malformed multipart/form-data body: {syntax}"))

    def tell(self) -> int:
        return self._received

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        """Called by twisted.web when the request ends or its connection drops.

        Removes the staging file: by then a stored upload has been renamed
        into blob storage, so what is left is only ever a refused or
        abandoned upload.
        """
        self._discard_file()
        if self.staging_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.staging_path)

    # Parsing.

    def _feed(self, data: bytes) -> ParserError | None:
        """Parse ``data``; a syntax error is returned, for the caller to judge.

        Any other problem fails the form: a parser limit, a field over its
        cap, a staging write that failed.
        """
        try:
            for event in self._parser.parse(data):
                self._handle(event)
        except ParserError as exc:
            return exc
        except ParserLimitReached as exc:
            self.fail(
                TooLarge(
                    f"The multipart/form-data body is over a limit: {exc} (at most "
                    f"{self._limits.max_parts} parts, 8 headers of 4 KiB per part)."
                )
            )
        except MinistryError as exc:
            self.fail(exc)
        except OSError as exc:
            self.fail(staging_failed(exc))
        return None

    def _handle(self, event: MultipartSegment | bytes | None) -> None:
        if isinstance(event, MultipartSegment):
            self._start(event)
        elif event is None:
            self._end()
        elif self._file is not None:
            self._file.write(event)
            for digest in self._hashes:
                digest.update(event)
        elif self._buffer is not None:
            self._fields_bytes += len(event)
            if len(self._buffer) + len(event) > self._limits.max_field:
                raise TooLarge(f"Form field {self._segment.name!r} is too large.")
            if self._fields_bytes > self._limits.max_fields_total:
                raise TooLarge("The form's fields are too large in total.")
            self._buffer.extend(event)

    def _start(self, segment: MultipartSegment) -> None:
        self._segment = segment
        if segment.name == FILE_FIELD and segment.filename is not None:
            if self.staging_path is not None:
                raise BadRequest("More than one file in the 'content' field.")
            self.staging_path = self._new_staging_path()
            self._small_body = None
            self._file = open(self.staging_path, "wb")  # noqa: SIM115 - closed in _end/close
            self._file_name = segment.filename
            self._hashes = (
                hashlib.md5(usedforsecurity=False),
                hashlib.sha256(),
                hashlib.blake2b(digest_size=32),
            )
        elif segment.filename is None:
            self._buffer = bytearray()
        # Other file parts (old clients' .asc signatures) are read and dropped.

    def _end(self) -> None:
        segment = self._segment
        if self._file is not None:
            size = self._file.tell()
            self._close_file()
            md5, sha256, blake2b = self._hashes
            self._received_file = ReceivedFile(
                filename=self._file_name,
                size=size,
                md5=md5.hexdigest(),
                sha256=sha256.hexdigest(),
                blake2b_256=blake2b.hexdigest(),
            )
        elif self._buffer is not None and segment is not None:
            text = bytes(self._buffer).decode(_charset(segment), errors="replace")
            self.fields.setdefault(segment.name or "", []).append(text)
        self._buffer = None
        self._segment = None

    def _close_file(self) -> None:
        """Close the staging file; a failed final write raises (the file is short)."""
        handle, self._file = self._file, None
        if handle is not None:
            handle.close()

    def _discard_file(self) -> None:
        """Close the staging file, which is being given up: a failed write does not matter."""
        with contextlib.suppress(OSError):
            self._close_file()

    # Results.

    def fail(self, error: MinistryError) -> None:
        """Stop parsing: the rest of the body is read and dropped."""
        if self.error is None:
            self.error = error
        self._discard_file()

    def _parse_leniently(self) -> None:
        """Parse a small, file-less body written with bare LF line endings.

        distutils' ``register`` command sent exactly that (and a newline
        before the first boundary), which strict parsers rightly refuse.
        """
        body = re.sub(rb"(?<!\r)\n", b"\r\n", bytes(self._small_body or b"")).lstrip(b"\r\n")
        self.fields = {}
        self._parser = PushMultipartParser(self._boundary, max_segment_count=self._limits.max_parts)
        syntax = self._feed(body)
        if syntax is not None:
            self.fail(BadRequest(f"Malformed multipart/form-data body: {syntax}"))

    def result(self) -> tuple[dict[str, list[str]], ReceivedFile | None]:
        """The fields and the received file, or the error that stopped parsing."""
        if self._lenient and self.error is None:
            self._parse_leniently()
        if self.error is None:
            try:
                self._parser.close()
            except MultipartError as exc:
                self.fail(BadRequest(f"Incomplete multipart/form-data body: {exc}"))
        if self.error is not None:
            raise self.error
        return self.fields, self._received_file


def _charset(segment: MultipartSegment) -> str:
    """The charset a text part declares (UTF-8 if none); an unknown one is a 400."""
    name = segment.charset or "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        raise BadRequest(
            f"Form field {segment.name!r} declares an unknown charset {name!r}."
        ) from None
    return name

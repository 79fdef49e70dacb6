"""Upstream project pages (PEP 691 JSON, PEP 503 HTML) read into file records.

The proxy serves an upstream project as if it were hosted here: the same
:class:`FileRecord` model, rendered by the same code, with file URLs on this
server. This module turns an upstream page into those records
(``origin="proxy"``) and keeps the upstream URL of each file beside its
record, in :class:`UpstreamFile`, to fetch the bytes from later. Pure: bytes
and strings in, dataclasses out; the web layer decides when to fetch.

What is kept, and why:

- **Only files with a valid sha256.** Every byte the proxy keeps and serves
  is checked against the page's sha256; a file without one (an old upstream
  offering only ``#md5=``) could be corrupted or swapped unnoticed and then
  served from the cache forever, so it is left out of the page (counted in
  :attr:`ParsedPage.skipped`) rather than served unchecked.
- **Only wheels and ``.tar.gz``/``.zip`` sdists whose name is the project's**,
  with a PEP 440 version, as ``ministry.core.names.parse_filename`` accepts
  for uploads. Eggs, Windows installers and legacy versions are ignored by
  current pip and uv anyway, and the same checks keep filenames safe as
  storage keys and URL segments.
- **URLs** are resolved against the page URL (after redirects; PEP 691 allows
  relative URLs) and, in HTML, a ``<base href>``; only http(s) URLs are kept,
  without their fragment.
- **Yanked** follows PEP 592: the ``data-yanked`` attribute's presence means
  yanked, even bare; ``true`` in JSON is a yank without a reason ("").
- **Unknown upload time** (HTML, or JSON without PEP 700's ``upload-time``):
  ``--upstream-min-age`` counts from the time this proxy first saw the file,
  carried over from the previous page (never earlier than the truth, so the
  cooldown errs on the side of hiding a file). That time is kept in the
  record for the cooldown alone and marked ``upload_time_known=False``: it is
  not the file's upload time, and is never served as one. The simple API
  leaves ``upload-time`` out for such a file (PEP 700 makes it optional)
  rather than invent one, because clients take the key at its word: uv's
  ``exclude-newer`` then skips the file ("missing an upload date") and pip
  26's ``--uploaded-prior-to`` stops with "Index ... does not provide
  upload-time metadata"; both refuse what they cannot date, where a
  first-seen time passed off as the upload time would have been compared
  (and written into lock files) as if the upstream had said it.
- **Unknown size** (HTML): 0 until the file is cached and its size known.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from ministry.core.errors import MinistryError
from ministry.core.models import ACTIVE, WHEEL, FileRecord, parse_time
from ministry.core.names import parse_filename
from ministry.core.upstream_index import serial_of
from ministry.core.upstream_links import Link, PageError, html_links, json_links, status_of

#: The only on-disk format of :meth:`UpstreamPage.to_dict` so far.
PAGE_FORMAT = 1

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class UpstreamFile:
    """A proxied file's record, and where its bytes (and metadata) live upstream."""

    record: FileRecord
    url: str
    #: The PEP 658 ``<url>.metadata`` when the page offers it with a sha256.
    metadata_url: str | None = None
    #: The PEP 740 provenance's URL, when the page offers one.
    provenance_url: str | None = None
    #: False when the upstream gave no upload time: ``record.upload_time`` is
    #: then when this index first saw the file, for the cooldown only.
    upload_time_known: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record.to_dict(),
            "url": self.url,
            "metadata_url": self.metadata_url,
            "provenance_url": self.provenance_url,
            "upload_time_known": self.upload_time_known,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UpstreamFile:
        values = dict(data)
        url, metadata_url = values.pop("url"), values.pop("metadata_url")
        provenance_url = values.pop("provenance_url", None)  # absent from older saved pages
        # Pages saved before the flag existed cannot tell: taken as known.
        known = bool(values.pop("upload_time_known", True))
        return cls(FileRecord.from_dict(values), url, metadata_url, provenance_url, known)


@dataclass(frozen=True)
class ParsedPage:
    """The usable files of an upstream page, how many were left out, and its PEP 792 status."""

    files: tuple[UpstreamFile, ...]
    skipped: int = 0
    status: str = ACTIVE
    status_reason: str | None = None


@dataclass(frozen=True)
class UpstreamPage:
    """An upstream project page as cached: its files and how to revalidate it."""

    project: str  # canonical
    upstream: str  # the --upstream base URL it came from
    url: str  # the page's own URL, after redirects
    etag: str | None
    fetched: float  # epoch seconds of the last fetch or successful revalidation
    files: tuple[UpstreamFile, ...]
    #: The upstream's PEP 792 marker, passed through (pages saved before: active).
    status: str = ACTIVE
    status_reason: str | None = None
    #: The upstream's ``X-PyPI-Last-Serial`` for the project (None: not given, or
    #: saved before it was kept), for the mirror to skip unchanged projects
    #: (``ministry.core.upstream_index``).
    serial: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PAGE_FORMAT,
            "project": self.project,
            "upstream": self.upstream,
            "url": self.url,
            "etag": self.etag,
            "fetched": self.fetched,
            "files": [upstream_file.to_dict() for upstream_file in self.files],
            "status": self.status,
            "status_reason": self.status_reason,
            "serial": self.serial,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UpstreamPage:
        if data.get("format") != PAGE_FORMAT:
            raise PageError(f"unknown cached page format {data.get('format')!r}")
        try:
            return cls(
                data["project"],
                data["upstream"],
                data["url"],
                data["etag"],
                float(data["fetched"]),
                tuple(UpstreamFile.from_dict(item) for item in data["files"]),
                *status_of(data.get("status"), data.get("status_reason")),
                serial_of(data.get("serial")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PageError(f"damaged cached page: {exc!r}") from None


def parse_page(
    body: bytes,
    content_type: str,
    page_url: str,
    project: str,
    seen: datetime,
    previous: UpstreamPage | None = None,
) -> ParsedPage:
    """The usable files of an upstream page for the canonical ``project``.

    ``content_type`` is the response's Content-Type: a ``+json`` or
    ``/json`` type is PEP 691 JSON, an ``html`` type PEP 503 HTML; anything
    else, or a body that does not parse, raises :class:`PageError`.
    ``seen`` (timezone-aware) stands in for missing upload times, unless
    ``previous`` (the page cached before) already gave the file one; such a
    file is marked ``upload_time_known=False`` (see the module notes).
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    status: tuple[str, str | None] = (ACTIVE, None)  # HTML has none: PEP 833 froze it
    if media_type.endswith(("+json", "/json")):
        links, status = json_links(body)
    elif "html" in media_type:
        links = html_links(body, page_url)
    else:
        raise PageError(f"unexpected content type {content_type!r}")
    earlier: dict[str, UpstreamFile] = {}
    if previous is not None:
        earlier = {item.record.filename: item for item in previous.files}
    files: dict[str, UpstreamFile] = {}
    skipped = 0
    for link in links:
        built = _build(link, page_url, project, earlier.get(link.filename), seen)
        if built is None or built.record.filename in files:
            skipped += 1
        else:
            files[built.record.filename] = built
    return ParsedPage(tuple(files.values()), skipped, *status)


def _build(
    link: Link, page_url: str, project: str, earlier: UpstreamFile | None, seen: datetime
) -> UpstreamFile | None:
    """The checked file of one link, or None when it is left out (see module notes).

    Without an upload time on the page, the file keeps the one ``earlier``
    (its entry on the previous page) had, else counts from ``seen``.
    """
    url = urldefrag(urljoin(page_url, link.url))[0]
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    sha256 = _hex(link.hashes.get("sha256"), _HEX64)
    if sha256 is None:
        return None
    try:
        parsed = parse_filename(link.filename)
    except MinistryError:
        return None
    if parsed.project != project:
        return None
    metadata_sha256 = (
        _hex(link.metadata.get("sha256"), _HEX64) if isinstance(link.metadata, dict) else None
    )
    upload_time, known = _upload_time(link, earlier, seen)
    provenance = _provenance_url(link.provenance, page_url)
    record = FileRecord(
        project=project,
        filename=link.filename,
        version=str(parsed.version),
        packagetype=parsed.packagetype,
        size=_size(link.size),
        sha256=sha256,
        blake2b_256=_hex(link.hashes.get("blake2b_256"), _HEX64) or "",
        md5=_hex(link.hashes.get("md5"), _HEX32) or "",
        upload_time=upload_time,
        requires_python=_text(link.requires_python),
        python_version=link.filename.split("-")[-3] if parsed.packagetype == WHEEL else "source",
        metadata_sha256=metadata_sha256,
        yanked=_yanked(link.yanked),
        origin="proxy",
        provenance_upstream=provenance is not None,
    )
    metadata_url = f"{url}.metadata" if metadata_sha256 else None
    return UpstreamFile(record, url, metadata_url, provenance, known)


def _provenance_url(value: Any, page_url: str) -> str | None:
    """A PEP 740 ``provenance`` URL made absolute, if it is an http(s) one."""
    if not isinstance(value, str) or not value:
        return None
    url = urljoin(page_url, value)
    return url if urlsplit(url).scheme in ("http", "https") else None


def _upload_time(link: Link, earlier: UpstreamFile | None, seen: datetime) -> tuple[datetime, bool]:
    """The file's upload time and whether the upstream gave it (see the module notes).

    A time an earlier page gave stays known: the upstream said it once.
    """
    given = _time(link.upload_time)
    if given is not None:
        return given, True
    if earlier is not None:
        return earlier.record.upload_time, earlier.upload_time_known
    return seen, False


def _hex(value: Any, pattern: re.Pattern[str]) -> str | None:
    text = value.lower() if isinstance(value, str) else ""
    return text if pattern.fullmatch(text) else None


def _size(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _yanked(value: Any) -> str | None:
    """PEP 691's ``yanked`` (False, True or a reason) as the record's field."""
    if value is True:
        return ""
    if isinstance(value, str):
        return value
    return None

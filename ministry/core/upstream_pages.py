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

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from ministry.core.errors import MinistryError
from ministry.core.models import ACTIVE, STATUSES, WHEEL, FileRecord, parse_time
from ministry.core.names import parse_filename

#: The only on-disk format of :meth:`UpstreamPage.to_dict` so far.
PAGE_FORMAT = 1

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")


class PageError(ValueError):
    """The upstream answered something that is not a simple-API page we can read."""


@dataclass(frozen=True)
class UpstreamFile:
    """A proxied file's record, and where its bytes (and metadata) live upstream."""

    record: FileRecord
    url: str
    #: The PEP 658 ``<url>.metadata`` when the page offers it with a sha256.
    metadata_url: str | None = None
    #: False when the upstream gave no upload time: ``record.upload_time`` is
    #: then when this index first saw the file, for the cooldown only.
    upload_time_known: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record.to_dict(),
            "url": self.url,
            "metadata_url": self.metadata_url,
            "upload_time_known": self.upload_time_known,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UpstreamFile:
        values = dict(data)
        url, metadata_url = values.pop("url"), values.pop("metadata_url")
        # Pages saved before the flag existed cannot tell: taken as known.
        known = bool(values.pop("upload_time_known", True))
        return cls(FileRecord.from_dict(values), url, metadata_url, known)


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
                *_status(data.get("status"), data.get("status_reason")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PageError(f"damaged cached page: {exc!r}") from None


@dataclass(frozen=True)
class _Link:
    """One file as an upstream page describes it, before any checking."""

    filename: str
    url: str
    hashes: Mapping[str, Any]
    requires_python: Any = None
    yanked: Any = False
    metadata: Any = False  # False, True or {"sha256": ...}
    size: Any = None
    upload_time: Any = None


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
        links, status = _json_links(body)
    elif "html" in media_type:
        links = _html_links(body, page_url)
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


def _json_links(body: bytes) -> tuple[Iterator[_Link], tuple[str, str | None]]:
    """The links of a PEP 691 page, and its PEP 792 ``project-status`` (status, reason)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PageError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise PageError("not a PEP 691 project page: no 'files' list")
    meta = document.get("meta")
    _check_api_version(meta.get("api-version") if isinstance(meta, dict) else None)
    marker = document.get("project-status")
    marker = marker if isinstance(marker, dict) else {}
    return _json_files(document["files"]), _status(marker.get("status"), marker.get("reason"))


def _status(status: Any, reason: Any) -> tuple[str, str | None]:
    """A PEP 792 marker as kept: an unknown or missing status is ``active`` (as PEP 792
    tells installers to read one), a reason only if it is text."""
    if status not in STATUSES:
        return ACTIVE, None  # the reason was about a status we do not know
    return status, reason if isinstance(reason, str) and reason else None


def _json_files(entries: list[Any]) -> Iterator[_Link]:
    for entry in entries:
        if not isinstance(entry, dict):
            yield _Link("", "", {})
            continue
        hashes = entry.get("hashes")
        metadata = entry.get("core-metadata", entry.get("dist-info-metadata", False))
        yield _Link(
            filename=str(entry.get("filename", "")),
            url=str(entry.get("url", "")),
            hashes=hashes if isinstance(hashes, dict) else {},
            requires_python=entry.get("requires-python"),
            yanked=entry.get("yanked", False),
            metadata=metadata,
            size=entry.get("size"),
            upload_time=entry.get("upload-time"),
        )


class _Anchors(HTMLParser):
    """Collects the attributes of every ``<a>``, the ``<base href>`` and the API version."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self.base: str | None = None
        self.api_version: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.anchors.append(values)
        elif tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]
        elif tag == "meta" and values.get("name") == "pypi:repository-version":
            self.api_version = values.get("content")


def _html_links(body: bytes, page_url: str) -> list[_Link]:
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    parser.close()
    _check_api_version(parser.api_version)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    links = []
    for anchor in parser.anchors:
        url, fragment = urldefrag(urljoin(base, anchor["href"] or ""))
        algorithm, _, digest = fragment.partition("=")
        metadata = anchor.get("data-core-metadata", anchor.get("data-dist-info-metadata"))
        links.append(
            _Link(
                filename=unquote(urlsplit(url).path.rsplit("/", 1)[-1]),
                url=url,
                hashes={algorithm: digest} if digest else {},
                requires_python=anchor.get("data-requires-python"),
                # PEP 592: the attribute's presence is the yank, a value its reason.
                yanked=(anchor["data-yanked"] or "") if "data-yanked" in anchor else False,
                metadata=_html_metadata(metadata),
            )
        )
    return links


def _html_metadata(value: str | None) -> bool | dict[str, str]:
    """``data-core-metadata``: absent, ``true``, or ``<algorithm>=<digest>``."""
    if value is None:
        return False
    algorithm, equals, digest = value.partition("=")
    return {algorithm: digest} if equals else True


def _check_api_version(version: Any) -> None:
    """Refuse a major version other than 1 (PEP 629): its meaning is unknown."""
    if version is None:
        return
    if str(version).split(".", 1)[0].strip() != "1":
        raise PageError(f"unsupported simple API version {version!r}")


def _build(
    link: _Link, page_url: str, project: str, earlier: UpstreamFile | None, seen: datetime
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
    )
    return UpstreamFile(record, url, f"{url}.metadata" if metadata_sha256 else None, known)


def _upload_time(
    link: _Link, earlier: UpstreamFile | None, seen: datetime
) -> tuple[datetime, bool]:
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

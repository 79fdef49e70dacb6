"""The links of an upstream project page, read from PEP 691 JSON or PEP 503 HTML, unchecked.

Each file a page lists becomes a :class:`Link` holding what the page said,
as it said it; ``ministry.core.upstream_pages`` decides what is kept.
JSON gives the PEP 792 ``project-status`` too; HTML has none (PEP 833 froze
that format). A page of a major API version other than 1 is refused
(PEP 629): what it means is unknown.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from ministry.core.models import ACTIVE, STATUSES


class PageError(ValueError):
    """The upstream answered something that is not a simple-API page we can read."""


@dataclass(frozen=True)
class Link:
    """One file as an upstream page describes it, before any checking."""

    filename: str
    url: str
    hashes: Mapping[str, Any]
    requires_python: Any = None
    yanked: Any = False
    metadata: Any = False  # False, True or {"sha256": ...}
    size: Any = None
    upload_time: Any = None
    provenance: Any = None  # its URL, relative to the page


def pep691_document(body: bytes, key: str, what: str) -> dict[str, Any]:
    """A PEP 691 JSON document (``what``: a project page, the index) listing ``key``.

    Its ``meta.api-version`` is checked; raises :class:`PageError` for
    anything else.
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PageError(f"{what} is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get(key), list):
        raise PageError(f"not a PEP 691 {what}: no {key!r} list")
    meta = document.get("meta")
    _check_api_version(meta.get("api-version") if isinstance(meta, dict) else None)
    return document


def json_links(body: bytes) -> tuple[Iterator[Link], tuple[str, str | None]]:
    """The links of a PEP 691 page, and its PEP 792 ``project-status`` (status, reason)."""
    document = pep691_document(body, "files", "project page")
    marker = document.get("project-status")
    marker = marker if isinstance(marker, dict) else {}
    return _json_files(document["files"]), status_of(marker.get("status"), marker.get("reason"))


def status_of(status: Any, reason: Any) -> tuple[str, str | None]:
    """A PEP 792 marker as kept: an unknown or missing status is ``active`` (as PEP 792
    tells installers to read one), a reason only if it is text."""
    if status not in STATUSES:
        return ACTIVE, None  # the reason was about a status we do not know
    return status, reason if isinstance(reason, str) and reason else None


def _json_files(entries: list[Any]) -> Iterator[Link]:
    for entry in entries:
        if not isinstance(entry, dict):
            yield Link("", "", {})
            continue
        hashes = entry.get("hashes")
        metadata = entry.get("core-metadata", entry.get("dist-info-metadata", False))
        yield Link(
            filename=str(entry.get("filename", "")),
            url=str(entry.get("url", "")),
            hashes=hashes if isinstance(hashes, dict) else {},
            requires_python=entry.get("requires-python"),
            yanked=entry.get("yanked", False),
            metadata=metadata,
            size=entry.get("size"),
            upload_time=entry.get("upload-time"),
            provenance=entry.get("provenance"),
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


def html_links(body: bytes, page_url: str) -> list[Link]:
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
            Link(
                filename=unquote(urlsplit(url).path.rsplit("/", 1)[-1]),
                url=url,
                hashes={algorithm: digest} if digest else {},
                requires_python=anchor.get("data-requires-python"),
                # PEP 592: the attribute's presence is the yank, a value its reason.
                yanked=(anchor["data-yanked"] or "") if "data-yanked" in anchor else False,
                metadata=_html_metadata(metadata),
                provenance=anchor.get("data-provenance"),
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

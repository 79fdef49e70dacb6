"""Pages read back the way clients read them: with ``html.parser``, never with regexes.

pip, uv (through its own parser), pdm's unearth and wget all walk the start
tags of a page and read each ``<a>``'s attributes: ``href`` (with its
``#sha256=`` fragment), ``data-requires-python``, ``data-yanked``,
``data-core-metadata`` and ``data-dist-info-metadata``. :func:`parse_page`
does the same and also keeps each element's text, so one parser serves the
simple-API tests, the directory listing tests and the browser pages' tests.
A regex over the markup would accept what no client can read (attributes
in another order or quoting, entities left encoded), so tests use this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

#: Elements that never have content or an end tag.
VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
    | {"track", "wbr"}
)


@dataclass(frozen=True)
class Element:
    """One start tag: its attributes and all the text inside it (entities decoded).

    ``element["href"]`` and ``element.get("data-yanked")`` read an
    attribute, as a client's parser would: a valueless attribute
    (``<a data-yanked>``) is ``None``, an absent one is missing.
    """

    tag: str
    attrs: dict[str, str | None]
    text: str

    def __getitem__(self, name: str) -> str | None:
        return self.attrs[name]

    def __contains__(self, name: str) -> bool:
        return name in self.attrs

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)

    @property
    def href(self) -> str:
        """The ``href``, or ``""`` for an anchor without one."""
        return self.attrs.get("href") or ""


@dataclass(frozen=True)
class Page:
    """Every element of a page in document order, and its text."""

    elements: tuple[Element, ...]
    #: All the page's text, whitespace runs collapsed to one space.
    text: str

    def all(self, tag: str) -> list[Element]:
        return [element for element in self.elements if element.tag == tag]

    def first(self, tag: str) -> Element | None:
        return next((element for element in self.elements if element.tag == tag), None)

    @property
    def links(self) -> list[Element]:
        """Every ``<a>``, as a PEP 503 client collects them."""
        return self.all("a")

    @property
    def title(self) -> str:
        title = self.first("title")
        return title.text if title is not None else ""

    @property
    def meta(self) -> dict[str, str | None]:
        """``<meta name=... content=...>`` as a dict (``pypi:repository-version``...)."""
        return {
            element.attrs["name"] or "": element.get("content")
            for element in self.all("meta")
            if "name" in element
        }

    def hrefs(self) -> list[str]:
        return [link.href for link in self.links]

    def link(self, pattern: str) -> str:
        """The first ``href`` that ``pattern`` matches (``re.search``)."""
        return next(href for href in self.hrefs() if re.search(pattern, href))


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.started: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.open: list[tuple[str, list[str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parts: list[str] = []
        self.started.append((tag, dict(attrs), parts))
        if tag not in VOID:
            self.open.append((tag, parts))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.started.append((tag, dict(attrs), []))

    def handle_endtag(self, tag: str) -> None:
        # An end tag closes its element and whatever was left open inside it
        # (an unclosed <p> or <li>); a stray one closes nothing.
        for depth in range(len(self.open) - 1, -1, -1):
            if self.open[depth][0] == tag:
                del self.open[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for _, parts in self.open:
            parts.append(data)


def parse_page(body: bytes | str) -> Page:
    """Parse a page (UTF-8 bytes or text) into its elements and text."""
    collector = _Collector()
    collector.feed(body.decode("utf-8") if isinstance(body, bytes) else body)
    collector.close()
    return Page(
        tuple(Element(tag, attrs, "".join(parts)) for tag, attrs, parts in collector.started),
        " ".join(" ".join(collector.text).split()),
    )


def links(body: bytes | str) -> list[Element]:
    """Every ``<a>`` of a page with its attributes and text."""
    return parse_page(body).links

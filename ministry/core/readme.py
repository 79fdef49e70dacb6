"""A project's long description as safe HTML, rendered the way PyPI renders it.

readme_renderer is PyPI's own renderer, so a README looks the same here as
there, and its output is already sanitised (nh3 with PyPI's allow-list).
Nothing here bypasses that: the result is always readme_renderer's cleaned
HTML, or its escaped plain text when the markup cannot be rendered.

``Description-Content-Type`` picks the renderer, with PyPI's rules:
``text/markdown`` (``variant=GFM`` by default, or ``CommonMark``),
``text/x-rst``, ``text/plain``; missing means reStructuredText (the historic
default); anything unknown, or reStructuredText that fails to parse, is shown
as plain text rather than refused.

Images are shown as their text (:func:`images_as_text`). A README's badges
and logos live on other hosts; loading them would tell those hosts who reads
which private project, from where, and most private indexes' readers cannot
reach them anyway, so they would be broken images. PyPI proxies them; an
index that is often offline has nothing to proxy from. The pages' policy
(``img-src 'self'``) stays closed, and each image becomes a small label with
its alt text (or its file name), inside whatever link it had.
"""

from __future__ import annotations

import re

#: A heading tag in sanitised HTML. Text content cannot match: the sanitiser
#: escapes every ``<`` that does not start a real tag.
_HEADING = re.compile(r"<(/?)h([1-6])(?=[\s/>])", re.IGNORECASE)
#: An image tag, and one attribute of sanitised HTML (values always double-quoted, escaped).
_IMAGE = re.compile(r"<img\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r'\s([a-zA-Z-]+)="([^"]*)"')


def content_type_parts(value: str) -> tuple[str, dict[str, str]]:
    """``"text/markdown; variant=GFM"`` -> ``("text/markdown", {"variant": "GFM"})``."""
    kind, *params = value.split(";")
    options: dict[str, str] = {}
    for param in params:
        key, _, option = param.partition("=")
        options[key.strip().lower()] = option.strip().strip('"')
    return kind.strip().lower(), options


def render_readme(text: str, content_type: str = "", heading_offset: int = 0) -> str:
    """Sanitised HTML for a description; empty for an empty one.

    ``heading_offset`` moves headings down (``h1`` -> ``h3`` for 2, capped at
    ``h6``) so that a README's own headings sit below the page's, and the
    page keeps its single ``h1``.
    """
    if not text.strip():
        return ""
    # Imported on the first README, not at start-up: docutils, Pygments and
    # the Markdown parser take a tenth of a second that the first answer waits for.
    from readme_renderer import markdown, rst, txt

    kind, options = content_type_parts(content_type or "text/x-rst")
    rendered: str | None = None
    if kind == "text/markdown":
        variant = options.get("variant", "GFM")
        rendered = markdown.render(text, variant="CommonMark" if variant == "CommonMark" else "GFM")
    elif kind == "text/x-rst":
        rendered = rst.render(text)
    if rendered is None:
        rendered = txt.render(text) or ""
    if heading_offset:
        rendered = shift_headings(rendered, heading_offset)
    return images_as_text(rendered)


def images_as_text(html: str) -> str:
    """Replace each ``<img>`` of sanitised HTML by a label: its alt text, else its file name.

    The attribute values are the sanitiser's, already escaped, so they are
    put back as they are; an image that was a link's content leaves a link
    with a label.
    """

    def label(match: re.Match[str]) -> str:
        attributes = dict(_ATTRIBUTE.findall(match.group(1)))
        source = attributes.get("src", "")
        text = attributes.get("alt") or source.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        return f'<span class="readme-image" title="{source}">{text or "image"}</span>'

    return _IMAGE.sub(label, html)


def shift_headings(html: str, offset: int) -> str:
    """Rename every ``h<n>`` tag to ``h<n + offset>``, at most ``h6``."""

    def shifted(match: re.Match[str]) -> str:
        return f"<{match.group(1)}h{min(int(match.group(2)) + offset, 6)}"

    return _HEADING.sub(shifted, html)

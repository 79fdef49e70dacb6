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
"""

from __future__ import annotations

import re

#: A heading tag in sanitised HTML. Text content cannot match: the sanitiser
#: escapes every ``<`` that does not start a real tag.
_HEADING = re.compile(r"<(/?)h([1-6])(?=[\s/>])", re.IGNORECASE)


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
    return shift_headings(rendered, heading_offset) if heading_offset else rendered


def shift_headings(html: str, offset: int) -> str:
    """Rename every ``h<n>`` tag to ``h<n + offset>``, at most ``h6``."""

    def shifted(match: re.Match[str]) -> str:
        return f"<{match.group(1)}h{min(int(match.group(2)) + offset, 6)}"

    return _HEADING.sub(shifted, html)

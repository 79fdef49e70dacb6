"""The links a project's metadata names, and which of them may become links.

Metadata is written by whoever uploads, so a "Homepage" may be
``javascript:alert(1)``. Only absolute ``http`` and ``https`` URLs become
links; anything else is still shown, as text, so nothing is silently lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ministry.core.metadata import CoreMetadata

LINKABLE_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class ProjectLink:
    """A labelled URL; ``href`` is None when the URL must not be followed."""

    label: str
    url: str
    href: str | None


def web_link(url: str) -> str | None:
    """``url`` stripped, if it is an absolute http(s) URL with a host; else None."""
    url = url.strip()
    if any(ord(char) < 33 for char in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in LINKABLE_SCHEMES or not parts.netloc:
        return None
    return url


def project_links(meta: CoreMetadata) -> list[ProjectLink]:
    """Homepage, download URL and ``Project-URL`` entries, each URL once, in that order."""
    named = [("Homepage", meta.home_page), ("Download", meta.download_url)]
    named += list(meta.project_urls.items())
    links: list[ProjectLink] = []
    seen: set[str] = set()
    for label, url in named:
        url = url.strip()
        if not url or url in seen:
            continue
        seen.add(url)
        links.append(ProjectLink(label.strip() or url, url, web_link(url)))
    return links

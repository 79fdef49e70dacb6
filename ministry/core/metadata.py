"""Core metadata (a wheel's METADATA, an sdist's PKG-INFO), parsed leniently.

``packaging.metadata`` does the parsing. Files in the wild carry
Metadata-Version 1.0 to 2.5 and fields that strict validation rejects (odd
classifiers, unknown versions), so we take the raw parse and keep what we can
read, and only insist on a name and a version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.metadata import parse_email

from ministry.core.errors import BadRequest


@dataclass(frozen=True)
class CoreMetadata:
    """The fields of core metadata that the index shows or checks."""

    name: str
    version: str
    metadata_version: str = ""
    summary: str = ""
    description: str = ""
    description_content_type: str = ""
    requires_python: str | None = None
    requires_dist: tuple[str, ...] = ()
    provides_extra: tuple[str, ...] = ()
    classifiers: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    author: str = ""
    author_email: str = ""
    maintainer: str = ""
    maintainer_email: str = ""
    license: str = ""
    license_expression: str = ""
    home_page: str = ""
    download_url: str = ""
    platforms: tuple[str, ...] = ()
    #: "Label, URL" pairs as they appear in the file.
    project_urls: dict[str, str] = field(default_factory=dict)


def parse_core_metadata(data: bytes) -> CoreMetadata:
    """Parse METADATA / PKG-INFO bytes; raise BadRequest without name or version."""
    raw, _unparsed = parse_email(data)
    name = raw.get("name")
    version = raw.get("version")
    if not name or not version:
        raise BadRequest("Invalid distribution: its metadata has no Name or Version.")

    def text(key: str) -> str:
        value = raw.get(key)
        return value if isinstance(value, str) else ""

    def many(key: str) -> tuple[str, ...]:
        value = raw.get(key)
        return tuple(value) if isinstance(value, list) else ()

    return CoreMetadata(
        name=name,
        version=version,
        metadata_version=text("metadata_version"),
        summary=text("summary"),
        description=text("description"),
        description_content_type=text("description_content_type"),
        requires_python=raw.get("requires_python") or None,
        requires_dist=many("requires_dist"),
        provides_extra=many("provides_extra"),
        classifiers=many("classifiers"),
        keywords=many("keywords"),
        author=text("author"),
        author_email=text("author_email"),
        maintainer=text("maintainer"),
        maintainer_email=text("maintainer_email"),
        license=text("license"),
        license_expression=text("license_expression"),
        home_page=text("home_page"),
        download_url=text("download_url"),
        platforms=many("platforms"),
        project_urls=dict(raw.get("project_urls") or {}),
    )

"""Core metadata (a wheel's METADATA, an sdist's PKG-INFO), parsed leniently.

``packaging.metadata`` does the parsing. Files in the wild carry
Metadata-Version 1.0 to 2.5 and fields that strict validation rejects (odd
classifiers, unknown versions), so we take the raw parse and keep what we can
read, and only insist on a name and a version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.metadata import parse_email

from ministry.core.archives import read_core_metadata
from ministry.core.errors import BadRequest
from ministry.core.models import ProjectRecord
from ministry.core.names import ParsedFilename


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


#: The fields copied as they are, by type: ``packaging``'s raw keys are the
#: field names, so one list each says what is read, and an absent or
#: ill-typed value falls back to the field's empty default.
_TEXT_FIELDS = (
    "metadata_version",
    "summary",
    "description",
    "description_content_type",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "license",
    "license_expression",
    "home_page",
    "download_url",
)
_MANY_FIELDS = ("requires_dist", "provides_extra", "classifiers", "keywords", "platforms")


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
        requires_python=raw.get("requires_python") or None,
        project_urls=dict(raw.get("project_urls") or {}),
        **{key: text(key) for key in _TEXT_FIELDS},
        **{key: many(key) for key in _MANY_FIELDS},
    )


def read_core_metadata_at(path: str, parsed: ParsedFilename) -> bytes:
    """The core metadata bytes of a wheel or sdist on local disk (a staged upload, a
    fetched file), read by :func:`ministry.core.archives.read_core_metadata`.

    It blocks on the disk: callers on the reactor run it in a thread.
    """
    with open(path, "rb") as handle:
        return read_core_metadata(handle, parsed)


def registered_metadata(project: ProjectRecord) -> CoreMetadata:
    """What a project registered without files (``:action=submit``) says about itself.

    The form's fields are core metadata's, written lower-case with
    underscores; ``classifiers`` and ``platform`` repeat, ``keywords`` is one
    comma- or space-separated field, as setuptools sends them.
    """

    def first(key: str) -> str:
        values = project.info.get(key) or [""]
        return values[0]

    urls = {}
    for entry in project.info.get("project_urls", []):
        label, _, url = entry.partition(",")
        urls[label.strip()] = url.strip()
    keywords = first("keywords").replace(",", " ").split()
    return CoreMetadata(
        name=project.display_name,
        version=first("version"),
        metadata_version=first("metadata_version"),
        summary=first("summary"),
        description=first("description"),
        description_content_type=first("description_content_type"),
        home_page=first("home_page"),
        download_url=first("download_url"),
        requires_python=first("requires_python") or None,
        requires_dist=tuple(project.info.get("requires_dist", ())),
        provides_extra=tuple(project.info.get("provides_extra", ())),
        classifiers=tuple(project.info.get("classifiers", ())),
        keywords=tuple(keywords),
        license=first("license"),
        author=first("author"),
        author_email=first("author_email"),
        maintainer=first("maintainer"),
        maintainer_email=first("maintainer_email"),
        platforms=tuple(project.info.get("platform", ())),
        project_urls=urls,
    )

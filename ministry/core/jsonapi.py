"""The ``/pypi/<project>/json`` and ``/pypi/<project>/<version>/json`` documents.

Not a standard, but Warehouse's shape is what poetry (release details),
dependabot, renovate and many scripts read, so we copy its keys and its
``null`` for absent metadata rather than invent our own.

Here a release is the set of files sharing a version string; it counts as
yanked when every one of its files is. A quarantined project (PEP 792) has
no document: a 404 that says it is quarantined and why.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any
from urllib.parse import quote

from packaging.version import InvalidVersion, Version

from ministry.core.errors import NotFound
from ministry.core.metadata import CoreMetadata, registered_metadata
from ministry.core.models import FileRecord, ProjectRecord, format_time
from ministry.core.project_status import hides_files, quarantine_notice
from ministry.core.simple import version_key

FileUrl = Callable[[FileRecord], str]


def project_json(
    project: ProjectRecord,
    files: list[FileRecord],
    metadata: dict[str, CoreMetadata],
    file_url: FileUrl,
    base_url: str,
    version: str | None = None,
    upload_time_known: Callable[[FileRecord], bool] = lambda record: True,
) -> dict[str, Any]:
    """The JSON API document for a project, or for one of its versions.

    ``metadata`` maps a version string to that release's parsed core
    metadata; ``base_url`` (scheme, host, any prefix) makes the absolute
    ``package_url`` / ``release_url`` links. Without ``version`` the document
    describes the latest release and lists every release; with one, only that
    release. A project registered without files (``:action=submit``) is
    described by what it registered, with no files, as on its project page.
    Raises NotFound for an unknown version or a quarantined project.
    ``upload_time_known`` is False for a proxied file the upstream gave no
    upload time: its ``upload_time`` keys are then ``null`` rather than the
    moment this index first saw it (see ``ministry.core.upstream_pages``).
    """
    if hides_files(project):
        raise NotFound(f"Not Found: {quarantine_notice(project)}")
    releases = _releases(files)
    if not releases:
        registered = registered_metadata(project)
        if not registered.version:
            raise NotFound(f"Not Found: {project.display_name} has no releases.")
        releases = {registered.version: []}
        metadata = {registered.version: registered}
    chosen = latest_version(releases) if version is None else _find(releases, version, project)
    document: dict[str, Any] = {
        "info": _info(project, chosen, releases[chosen], metadata, base_url.rstrip("/")),
        "last_serial": project.serial,
        "urls": [_file(record, file_url, upload_time_known) for record in releases[chosen]],
    }
    if version is None:
        document["releases"] = {
            name: [_file(record, file_url, upload_time_known) for record in release]
            for name, release in releases.items()
        }
    return document


def latest_version(releases: dict[str, list[FileRecord]]) -> str:
    """The release a project page shows: Warehouse's rule.

    The highest non-yanked final release (pre- and dev releases excluded);
    failing that the highest non-yanked one; failing that the highest.
    """
    ordered = sorted(releases, key=version_key, reverse=True)
    standing = [name for name in ordered if not _is_yanked(releases[name])]
    finals = [name for name in standing if _is_final(name)]
    return (finals or standing or ordered)[0]


def _releases(files: list[FileRecord]) -> dict[str, list[FileRecord]]:
    """Files grouped by version string, versions in PEP 440 order, files in upload order."""
    grouped: dict[str, list[FileRecord]] = {}
    for record in files:
        grouped.setdefault(record.version, []).append(record)
    return {name: grouped[name] for name in sorted(grouped, key=version_key)}


def _find(releases: dict[str, list[FileRecord]], version: str, project: ProjectRecord) -> str:
    """The release named ``version``: its exact string, else an equal PEP 440 version.

    ``/pypi/foo/1.0.0/json`` finds a release uploaded as ``1.0``, as it does
    on PyPI.
    """
    if version in releases:
        return version
    wanted = _parse(version)
    if wanted is not None:
        for name in releases:
            if _parse(name) == wanted:
                return name
    raise NotFound(f"Not Found: {project.display_name} has no release {version!r}.")


def _info(
    project: ProjectRecord,
    version: str,
    release: list[FileRecord],
    metadata: dict[str, CoreMetadata],
    base_url: str,
) -> dict[str, Any]:
    """The ``info`` block of one release, null where the metadata says nothing."""
    meta = metadata.get(version) or CoreMetadata(name=project.display_name, version=version)
    project_url = f"{base_url}/project/{project.name}/"
    yanked = _is_yanked(release)
    return {
        "name": project.display_name,
        "version": version,
        "summary": _text(meta.summary),
        "description": _text(meta.description),
        "description_content_type": _text(meta.description_content_type),
        "author": _text(meta.author),
        "author_email": _text(meta.author_email),
        "maintainer": _text(meta.maintainer),
        "maintainer_email": _text(meta.maintainer_email),
        "license": _text(meta.license),
        "license_expression": _text(meta.license_expression),
        "keywords": _text(",".join(meta.keywords)),
        "classifiers": list(meta.classifiers),
        "platform": _text(",".join(meta.platforms)),
        "home_page": _text(meta.home_page),
        "download_url": _text(meta.download_url),
        "requires_dist": list(meta.requires_dist) or None,
        "requires_python": meta.requires_python or None,
        "project_urls": dict(meta.project_urls) or None,
        "provides_extra": list(meta.provides_extra) or None,
        "yanked": yanked,
        "yanked_reason": _yank_reason(release) if yanked else None,
        "package_url": project_url,
        "project_url": project_url,
        "release_url": f"{project_url}{quote(version, safe='')}/",
    }


def _file(
    record: FileRecord, file_url: FileUrl, upload_time_known: Callable[[FileRecord], bool]
) -> dict[str, Any]:
    """One entry of ``urls`` or ``releases``."""
    dated = upload_time_known(record)
    return {
        "filename": record.filename,
        "url": file_url(record),
        "digests": {
            "md5": record.md5,
            "sha256": record.sha256,
            "blake2b_256": record.blake2b_256,
        },
        "md5_digest": record.md5,
        "size": record.size,
        "packagetype": record.packagetype,
        "python_version": record.python_version,
        "requires_python": record.requires_python or None,
        "upload_time": (
            record.upload_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if dated else None
        ),
        "upload_time_iso_8601": format_time(record.upload_time) if dated else None,
        "yanked": record.yanked is not None,
        "yanked_reason": record.yanked or None,
        "has_sig": False,
        "comment_text": "",
    }


def _is_yanked(release: list[FileRecord]) -> bool:
    return all(record.yanked is not None for record in release)


def _yank_reason(release: list[FileRecord]) -> str | None:
    """The first reason given for yanking any of a yanked release's files."""
    return next((record.yanked for record in release if record.yanked), None)


def _is_final(version: str) -> bool:
    """Whether ``version`` is a final (or post) release; unparsable ones are not."""
    parsed = _parse(version)
    return parsed is not None and not parsed.is_prerelease


def _parse(version: str) -> Version | None:
    try:
        return Version(version)
    except InvalidVersion:
        return None


def _text(value: str) -> str | None:
    """Warehouse sends ``null``, not ``""``, for metadata a release does not have."""
    return value or None

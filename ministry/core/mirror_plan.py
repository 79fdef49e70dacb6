"""What the scheduled mirror fetches: file selection and the dependency closure.

Pure: file records and metadata bytes in; dataclasses out. The service in
:mod:`ministry.mirror` does the fetching and decides the order. The mirror's
planning is three modules of ``ministry.core``, each building on the one before:

- ``mirror_targets``: the environments served (:class:`Target`, their wheel
  tags and marker environments), and :class:`Need`, a requirement on some
  of them;
- ``mirror_config``: the ``[mirror]`` table, validated into a :class:`MirrorConfig`;
- ``mirror_plan`` (this module): which versions and files of a project a
  need selects (:func:`select`), and the needs a release's metadata adds
  (:func:`dependencies`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.parser import BytesParser

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ministry.core.mirror_config import MirrorConfig
from ministry.core.mirror_targets import Need, Target, file_targets
from ministry.core.models import SDIST, WHEEL, FileRecord

# -- selection --------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """One selected version: its files to fetch and the targets it serves."""

    version: Version
    files: tuple[FileRecord, ...]


def select(records: Iterable[FileRecord], need: Need, config: MirrorConfig) -> list[Release]:
    """The newest ``config.latest`` versions matching ``need``, with their wanted files.

    A file is wanted when some target of the need would install it (wheels
    by tag and Requires-Python, sdists when ``config.sdists``); yanked files
    are left out unless the requirement pins their version with ``==``; a
    version with no wanted file does not count towards ``latest``.
    """
    specifier = need.requirement.specifier
    pinned = any(spec.operator in ("==", "===") for spec in specifier)
    # A specifier naming a prerelease (">=2.0b1") asks for prereleases, as in pip.
    allow_prereleases = config.prereleases or bool(specifier.prereleases)
    by_version: dict[Version, list[FileRecord]] = {}
    for record in records:
        if record.packagetype == SDIST and not config.sdists:
            continue
        if record.yanked is not None and not pinned:
            continue
        try:
            version = Version(record.version)
        except InvalidVersion:
            continue
        if version.is_prerelease and not allow_prereleases:
            continue
        if not specifier.contains(version, prereleases=True):
            continue
        if file_targets(record, need.targets):
            by_version.setdefault(version, []).append(record)
    newest = sorted(by_version, reverse=True)[: config.latest]
    return [
        Release(version, tuple(sorted(by_version[version], key=lambda r: r.filename)))
        for version in newest
    ]


def metadata_source(release: Release) -> FileRecord | None:
    """The file whose core metadata stands for the release's: a wheel, PEP 658 first.

    An sdist's PKG-INFO is not trusted for dependencies (it may be dynamic).
    """
    wheels = [record for record in release.files if record.packagetype == WHEEL]
    offered = [record for record in wheels if record.metadata_sha256]
    return (offered or wheels or [None])[0]


# -- the closure --------------------------------------------------------------------------


def dependencies(metadata: bytes, need: Need) -> list[Need]:
    """The needs that one release's core metadata adds, for the targets of ``need``.

    Each ``Requires-Dist`` is evaluated in every target's environment, once
    with no extra and once per extra the requirement asks for; a dependency
    is needed on the targets where any of these evaluations accepts it.
    Unparseable lines are skipped (an upstream's mistake must not stop the
    mirror): they are returned by :func:`bad_requirements` for the log.
    """
    found: dict[str, tuple[Requirement, set[Target]]] = {}
    extras = ["", *sorted(canonicalize_name(extra) for extra in need.requirement.extras)]
    for line in _requires_dist(metadata):
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        wanted = {
            target
            for target in need.targets
            if requirement.marker is None
            or any(_evaluate(requirement.marker, target, extra) for extra in extras)
        }
        if not wanted or requirement.url:
            continue
        requirement.marker = None
        key = str(requirement)
        found.setdefault(key, (requirement, set()))[1].update(wanted)
    return [Need(requirement, frozenset(targets)) for requirement, targets in found.values()]


def bad_requirements(metadata: bytes) -> list[str]:
    """The Requires-Dist lines :func:`dependencies` could not parse."""
    bad = []
    for line in _requires_dist(metadata):
        try:
            Requirement(line)
        except InvalidRequirement:
            bad.append(line)
    return bad


def _requires_dist(metadata: bytes) -> Sequence[str]:
    message = BytesParser().parsebytes(metadata, headersonly=True)
    return [str(value).strip() for value in message.get_all("Requires-Dist") or []]


def _evaluate(marker: Marker, target: Target, extra: str) -> bool:
    try:
        return marker.evaluate(target.environment(extra))
    except (InvalidMarker, ValueError, TypeError):
        return False

"""What the scheduled mirror fetches: its configuration, file selection and dependency closure.

Pure: TOML values, file records and metadata bytes in; dataclasses out. The
service in :mod:`ministry.mirror` does the fetching and decides the order.

Targets. The ``python`` and ``platforms`` lists multiply into target
environments (3.11 on manylinux_2_28_x86_64, 3.11 on win_amd64, ...). Each
target has the set of wheel tags an installer on it accepts (built with
``packaging.tags``, the way pip builds its own, so that what is mirrored is
what pip and uv will pick) and the marker environment it evaluates
``Requires-Dist`` markers in. Pure wheels (``py3-none-any``) always match.

Needs. A :class:`Need` is a requirement together with the targets it applies
to: a dependency behind ``sys_platform == "win32"`` is needed on the Windows
targets only, so only their wheels (and the sdist, if asked) are fetched for
it. The closure is computed one need at a time by the service; needs already
expanded are skipped (:meth:`Need.key`), so cycles end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ministry.core.models import SDIST, WHEEL, FileRecord

#: Keys of the ``[mirror]`` table, with their defaults.
DEFAULTS: Mapping[str, Any] = {
    "every": "1h",
    "projects": [],
    "requirements": [],
    "dependencies": True,
    "python": ["3.11", "3.12"],
    "platforms": ["manylinux_2_28_x86_64", "win_amd64"],
    "sdists": True,
    "latest": 3,
    "prereleases": False,
}

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PYTHON = re.compile(r"3\.(\d{1,2})")
_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)")
_MACOS = re.compile(r"macosx_(\d+)_(\d+)_(\w+)")
#: The legacy manylinux names and the glibc version each stands for (PEP 600).
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


class MirrorConfigError(ValueError):
    """A ``[mirror]`` value is wrong; the message starts with ``mirror.<key>``."""


@dataclass(frozen=True)
class Target:
    """One environment the mirror serves: a Python version on a platform."""

    python: str  # "3.11"
    platform: str  # "manylinux_2_28_x86_64"

    def __str__(self) -> str:
        return f"{self.python}/{self.platform}"

    @property
    def tags(self) -> frozenset[Tag]:
        return _tags(self.python, self.platform)

    def environment(self, extra: str = "") -> dict[str, str]:
        """The PEP 508 marker environment of this target (``extra`` as given)."""
        system, sys_platform, os_name, machine = _platform_facts(self.platform)
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "os_name": os_name,
            "platform_machine": machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": system,
            "platform_version": "",
            "python_full_version": f"{self.python}.0",
            "python_version": self.python,
            "sys_platform": sys_platform,
            "extra": extra,
        }


@dataclass(frozen=True)
class Need:
    """A requirement to satisfy on some targets (see the module docstring)."""

    requirement: Requirement
    targets: frozenset[Target]

    @property
    def project(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def key(self) -> tuple[str, str, tuple[str, ...], frozenset[Target]]:
        """Equal for needs that select and expand the same things."""
        requirement = self.requirement
        return (
            self.project,
            str(requirement.specifier),
            tuple(sorted(requirement.extras)),
            self.targets,
        )


@dataclass(frozen=True)
class MirrorConfig:
    """The validated ``[mirror]`` table."""

    every: float = 3600.0
    requirements: tuple[Requirement, ...] = ()
    dependencies: bool = True
    python: tuple[str, ...] = ("3.11", "3.12")
    platforms: tuple[str, ...] = ("manylinux_2_28_x86_64", "win_amd64")
    sdists: bool = True
    latest: int = 3
    prereleases: bool = False
    targets: tuple[Target, ...] = field(init=False)

    def __post_init__(self) -> None:
        targets = tuple(Target(py, platform) for py in self.python for platform in self.platforms)
        object.__setattr__(self, "targets", targets)

    def roots(self) -> list[Need]:
        """The configured requirements, each needed on every target whose markers accept it."""
        needs = []
        for requirement in self.requirements:
            targets = frozenset(
                target
                for target in self.targets
                if requirement.marker is None or requirement.marker.evaluate(target.environment())
            )
            if targets:
                needs.append(Need(requirement, targets))
        return needs


# -- the [mirror] table ---------------------------------------------------------------


def parse_mirror_table(table: Mapping[str, Any], read_text: Callable[[str], str]) -> MirrorConfig:
    """The ``[mirror]`` table as a MirrorConfig; raises MirrorConfigError naming the key.

    ``read_text(path)`` returns a requirements file's text (the caller
    resolves paths and does the I/O), and raises OSError if it cannot.
    """
    if not isinstance(table, Mapping):
        raise MirrorConfigError("mirror: expected a table")
    unknown = sorted(set(table) - set(DEFAULTS))
    if unknown:
        raise MirrorConfigError(f"mirror.{unknown[0]}: unknown key (known: {', '.join(DEFAULTS)})")
    values = {**DEFAULTS, **table}
    requirements = [
        _requirement(text, "mirror.projects") for text in _strings(values, "projects", empty=True)
    ]
    for path in _strings(values, "requirements", empty=True):
        try:
            text = read_text(path)
        except OSError as exc:
            raise MirrorConfigError(f"mirror.requirements: cannot read {path}: {exc}") from None
        requirements += parse_requirements_file(text, f"mirror.requirements: {path}")
    if not requirements:
        raise MirrorConfigError(
            "mirror.projects: nothing to mirror (give projects or requirements)"
        )
    pythons = _strings(values, "python")
    for python in pythons:
        if not _PYTHON.fullmatch(python):
            raise MirrorConfigError(
                f"mirror.python: expected versions such as 3.12, not {python!r}"
            )
    platforms = _strings(values, "platforms")
    for platform in platforms:
        try:
            _platform_facts(platform)
        except ValueError as exc:
            raise MirrorConfigError(f"mirror.platforms: {exc}") from None
    latest = values["latest"]
    if not isinstance(latest, int) or isinstance(latest, bool) or latest < 1:
        raise MirrorConfigError(f"mirror.latest: expected a positive integer, not {latest!r}")
    return MirrorConfig(
        every=_every(values["every"]),
        requirements=tuple(requirements),
        dependencies=_bool(values, "dependencies"),
        python=tuple(dict.fromkeys(pythons)),
        platforms=tuple(dict.fromkeys(platforms)),
        sdists=_bool(values, "sdists"),
        latest=latest,
        prereleases=_bool(values, "prereleases"),
    )


def parse_requirements_file(text: str, where: str) -> list[Requirement]:
    """``name spec ; marker`` lines; comments, blank lines and ``-r``/``-c``/options ignored.

    Included files are not followed: the config lists every file it means.
    """
    requirements = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirements.append(_requirement(line, f"{where}:{number}"))
    return requirements


def _requirement(text: Any, where: str) -> Requirement:
    try:
        requirement = Requirement(str(text))
    except InvalidRequirement as exc:
        raise MirrorConfigError(f"{where}: {exc}") from None
    if requirement.url:
        raise MirrorConfigError(f"{where}: {text!r} is a URL, not an index requirement")
    return requirement


def _strings(values: Mapping[str, Any], key: str, empty: bool = False) -> list[str]:
    value = values[key]
    if (
        not isinstance(value, list)
        or not all(isinstance(item, str) and item.strip() for item in value)
        or (not value and not empty)
    ):
        raise MirrorConfigError(f"mirror.{key}: expected a list of strings, not {value!r}")
    return [item.strip() for item in value]


def _bool(values: Mapping[str, Any], key: str) -> bool:
    value = values[key]
    if not isinstance(value, bool):
        raise MirrorConfigError(f"mirror.{key}: expected true or false, not {value!r}")
    return value


def _every(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(value))
        if match is None:
            raise MirrorConfigError(
                f"mirror.every: expected a duration such as 30m, 1h or 1d, not {value!r}"
            )
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    if seconds < 1:
        raise MirrorConfigError(f"mirror.every: must be at least one second, not {value!r}")
    return seconds


# -- targets ----------------------------------------------------------------------------


def _platform_facts(platform: str) -> tuple[str, str, str, str]:
    """(platform_system, sys_platform, os_name, platform_machine) of a platform tag."""
    if match := _MANYLINUX.fullmatch(platform):
        return "Linux", "linux", "posix", match.group(3)
    if platform in ("win_amd64", "win32", "win_arm64"):
        machine = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}[platform]
        return "Windows", "win32", "nt", machine
    if match := _MACOS.fullmatch(platform):
        return "Darwin", "darwin", "posix", match.group(3)
    raise ValueError(
        f"unknown platform {platform!r} (expected manylinux_X_Y_ARCH, macosx_X_Y_ARCH, "
        "win_amd64, win32 or win_arm64)"
    )


def _platform_tags(platform: str) -> list[str]:
    """Every platform tag an installer on ``platform`` accepts, best first."""
    if match := _MANYLINUX.fullmatch(platform):
        major, minor, arch = int(match.group(1)), int(match.group(2)), match.group(3)
        tags = []
        for glibc in range(minor, 4, -1):
            tags.append(f"manylinux_{major}_{glibc}_{arch}")
            if (major, glibc) in _LEGACY_MANYLINUX:
                tags.append(f"{_LEGACY_MANYLINUX[major, glibc]}_{arch}")
        return tags
    if match := _MACOS.fullmatch(platform):
        return list(mac_platforms((int(match.group(1)), int(match.group(2))), match.group(3)))
    return [platform]


_TAG_CACHE: dict[tuple[str, str], frozenset[Tag]] = {}


def _tags(python: str, platform: str) -> frozenset[Tag]:
    """The wheel tags CPython ``python`` on ``platform`` installs (pure wheels included)."""
    cached = _TAG_CACHE.get((python, platform))
    if cached is None:
        version = tuple(int(part) for part in python.split("."))
        platforms = _platform_tags(platform)
        interpreter = f"cp{version[0]}{version[1]}"
        cached = frozenset(cpython_tags(version, [interpreter], platforms)) | frozenset(
            compatible_tags(version, interpreter, platforms)
        )
        _TAG_CACHE[python, platform] = cached
    return cached


# -- selection --------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """One selected version: its files to fetch and the targets it serves."""

    version: Version
    files: tuple[FileRecord, ...]


def file_targets(record: FileRecord, targets: Iterable[Target]) -> frozenset[Target]:
    """The targets that would install this file (an sdist: all of them)."""
    targets = frozenset(targets)
    if record.packagetype == SDIST:
        chosen = targets
    elif record.packagetype == WHEEL:
        try:
            tags = parse_wheel_filename(record.filename)[3]
        except InvalidWheelFilename:
            return frozenset()
        chosen = frozenset(target for target in targets if tags & target.tags)
    else:
        return frozenset()
    if record.requires_python:
        try:
            accepted = SpecifierSet(record.requires_python)
        except InvalidSpecifier:
            return chosen
        chosen = frozenset(
            t for t in chosen if accepted.contains(f"{t.python}.0", prereleases=True)
        )
    return chosen


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

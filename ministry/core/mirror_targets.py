"""Where the scheduled mirror's files go: target environments, their wheel tags, and needs.

Pure, like the rest of the mirror's planning (:mod:`ministry.core.mirror_plan`).

Targets. The ``python`` and ``platforms`` lists of the ``[mirror]`` table
multiply into target environments (3.11 on manylinux_2_28_x86_64, 3.11 on
win_amd64, ...). Each target has the set of wheel tags an installer on it
accepts (built with ``packaging.tags``, the way pip builds its own, so that
what is mirrored is what pip and uv will pick) and the marker environment it
evaluates ``Requires-Dist`` markers in. Pure wheels (``py3-none-any``) always
match; :func:`file_targets` says which targets would install a file.

Needs. A :class:`Need` is a requirement together with the targets it applies
to: a dependency behind ``sys_platform == "win32"`` is needed on the Windows
targets only, so only their wheels (and the sdist, if asked) are fetched for
it. The closure is computed one need at a time by the service; needs already
expanded are skipped (:meth:`Need.key`), so cycles end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ministry.core.models import SDIST, WHEEL, FileRecord

_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)")
_MACOS = re.compile(r"macosx_(\d+)_(\d+)_(\w+)")
#: The legacy manylinux names and the glibc version each stands for (PEP 600).
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


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
        system, sys_platform, os_name, machine = platform_facts(self.platform)
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


def platform_facts(platform: str) -> tuple[str, str, str, str]:
    """(platform_system, sys_platform, os_name, platform_machine) of a platform tag.

    Raises ValueError for a platform the mirror cannot build a target for,
    which is how the ``[mirror]`` table's ``platforms`` are validated.
    """
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

"""The ``[mirror]`` table of the config file, validated into a :class:`MirrorConfig`.

Pure: TOML values in, a frozen dataclass out. Reading the requirements files
a table names is the caller's I/O (``read_text``), so this module only says
what is wrong, always starting with the key: ``mirror.<key>: ...``. The
files themselves (requirements files with their includes, ``pylock.toml``
lock files) are read by :mod:`ministry.core.requirements`. What a config
then selects is :mod:`ministry.core.mirror_plan`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from ministry.core.mirror_targets import Need, Target, platform_facts
from ministry.core.requirements import RequirementsError, read_requirements
from ministry.core.units import parse_duration

_PYTHON = re.compile(r"3\.(\d{1,2})")


class MirrorConfigError(ValueError):
    """A ``[mirror]`` value is wrong; the message starts with ``mirror.<key>``."""


@dataclass(frozen=True)
class MirrorConfig:
    """The validated ``[mirror]`` table."""

    every: float = 3600.0
    requirements: tuple[Requirement, ...] = ()
    dependencies: bool = True
    python: tuple[str, ...] = ("3.11", "3.12")
    platforms: tuple[str, ...] = ("manylinux_2_28_x86_64", "win_amd64")
    sdists: bool = True
    build_requirements: bool = True
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


def _table_defaults() -> dict[str, Any]:
    """Every key of the ``[mirror]`` table with its default, taken from MirrorConfig's.

    ``projects`` and ``requirements`` (requirements files, where MirrorConfig
    holds the requirements read from them) select what to mirror: none by default.
    """
    typed = {item.name: item.default for item in fields(MirrorConfig) if item.init}
    del typed["requirements"]
    return {"projects": [], "requirements": [], **typed}


def parse_mirror_table(table: Mapping[str, Any], read_text: Callable[[str], str]) -> MirrorConfig:
    """The ``[mirror]`` table as a MirrorConfig; raises MirrorConfigError naming the key.

    ``read_text(path)`` returns a requirements file's text (the caller
    resolves paths and does the I/O), and raises OSError if it cannot.
    """
    if not isinstance(table, Mapping):
        raise MirrorConfigError("mirror: expected a table")
    defaults = _table_defaults()
    unknown = sorted(set(table) - set(defaults))
    if unknown:
        raise MirrorConfigError(f"mirror.{unknown[0]}: unknown key (known: {', '.join(defaults)})")
    values = {**defaults, **table}
    requirements = [
        _requirement(text, "mirror.projects") for text in _strings(values, "projects", empty=True)
    ]
    for path in _strings(values, "requirements", empty=True):
        try:
            requirements += read_requirements(path, read_text)
        except RequirementsError as exc:
            raise MirrorConfigError(f"mirror.requirements: {exc}") from None
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
            platform_facts(platform)
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
        build_requirements=_bool(values, "build_requirements"),
        latest=latest,
        prereleases=_bool(values, "prereleases"),
    )


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
        not isinstance(value, list | tuple)  # a tuple: one of MirrorConfig's defaults
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
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise MirrorConfigError(f"mirror.every: {exc}") from None
    if seconds < 1:
        raise MirrorConfigError(f"mirror.every: must be at least one second, not {value!r}")
    return seconds

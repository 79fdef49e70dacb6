"""``--upstream-min-age``: which proxied files a cooldown holds back, and its exceptions.

A file's age counts from its upload time, or from when this index first saw
it when the upstream gave none (``UpstreamFile.upload_time_known`` False; see
:mod:`ministry.core.upstream_pages`), so the cooldown errs on the side of
hiding a file. The web side serves what :func:`cool` shows and lists what it
holds back on the project page; the mirror fetches only what it shows.

Exceptions. An administrator may release one version, or every version of a
project, before its time (``ministry-admin cooldown allow requests==2.33.0
--reason ...``): a :class:`CooldownException`, kept in the metadata store,
listed, revocable, and written to the audit log. It keeps the version as
it was written, and the stores key it by :func:`release_key`, so ``2.33``
and ``2.33.0`` are one exception, as they are one release. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from packaging.version import InvalidVersion, Version

from ministry.core.errors import BadRequest
from ministry.core.models import format_time, parse_time
from ministry.core.names import check_project_name, release_version
from ministry.core.upstream_pages import UpstreamFile


@dataclass(frozen=True)
class HeldBack:
    """A proxied file that ``--upstream-min-age`` hides now, and until when."""

    filename: str
    version: str
    #: The upstream's upload time, or (``upload_time_known`` False) when this index first saw it.
    counted_from: datetime
    upload_time_known: bool
    until: datetime


@dataclass(frozen=True)
class CooldownException:
    """The cooldown waived for ``project`` (canonical): one release, or all (``version`` None).

    ``version`` as written (PEP 440-normalised); ``by`` and ``at`` say who
    allowed it and when, ``reason`` why, as the audit log does.
    """

    project: str
    version: str | None
    reason: str
    by: str
    at: datetime

    @property
    def spec(self) -> str:
        """How the command line names it: ``requests==2.33`` or ``requests``."""
        return self.project if self.version is None else f"{self.project}=={self.version}"

    def covers(self, version: str) -> bool:
        """Whether a file of ``version`` (as its filename spells it) is released by this."""
        if self.version is None:
            return True
        try:
            return release_version(version) == release_key(self.version)
        except InvalidVersion:
            return False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": format_time(self.at)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CooldownException:
        return cls(**{**data, "at": parse_time(data["at"])})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> CooldownException:
        return cls.from_dict(json.loads(text))


def release_key(version: str | None) -> str:
    """What the stores key an exception by: its release (``""`` for every version)."""
    return "" if version is None else release_version(version)


def parse_spec(text: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME==VERSION`` as (canonical name, normalised version or None).

    Raises BadRequest with a message for the command line: only an exact
    version may be named, since an exception is for a release someone checked.
    """
    text = text.strip()
    name, sep, version = text.partition("==")
    if not sep and any(mark in text for mark in "<>=!~@;[ "):
        raise BadRequest(f"{text!r}: name a project, or one release as NAME==VERSION")
    project = check_project_name(name.strip())
    if not sep:
        return project, None
    try:
        return project, str(Version(version.strip()))
    except InvalidVersion:
        raise BadRequest(f"{version.strip()!r} is not a valid version (PEP 440)") from None


@dataclass(frozen=True)
class Cooled:
    """What a cooldown makes of a proxied page at one moment."""

    #: The files served now: old enough, or released by an exception.
    shown: tuple[UpstreamFile, ...]
    #: The files hidden now, the first to come of age first.
    held_back: tuple[HeldBack, ...]
    #: The files shown only because an exception releases them.
    released_early: tuple[str, ...]
    #: The project's exceptions that were applied.
    exceptions: tuple[CooldownException, ...]
    #: When the next hidden file comes of age (None: none is hidden), when a
    #: page built from ``shown`` must be dropped.
    changes_at: datetime | None


def cool(
    files: Iterable[UpstreamFile],
    now: datetime,
    min_age: float,
    exceptions: Collection[CooldownException] = (),
) -> Cooled:
    """Hold back the files uploaded less than ``min_age`` seconds before ``now``.

    A file an exception ``covers`` is shown whatever its age. Every
    exception passed in is taken to be about these files' project.
    """
    files, exceptions = tuple(files), tuple(exceptions)
    if min_age <= 0:
        return Cooled(files, (), (), (), None)
    age = timedelta(seconds=min_age)
    shown: list[UpstreamFile] = []
    held: list[HeldBack] = []
    early: list[str] = []
    for item in files:
        record = item.record
        until = record.upload_time + age
        if until <= now:
            shown.append(item)
        elif any(exception.covers(record.version) for exception in exceptions):
            shown.append(item)
            early.append(record.filename)
        else:
            held.append(
                HeldBack(
                    record.filename,
                    record.version,
                    record.upload_time,
                    item.upload_time_known,
                    until,
                )
            )
    held.sort(key=lambda h: (h.until, h.filename))
    changes_at = held[0].until if held else None
    return Cooled(tuple(shown), tuple(held), tuple(early), exceptions, changes_at)

"""``--upstream-min-age``: which proxied files a cooldown holds back, and until when.

A file's age counts from its upload time, or from when this index first saw
it when the upstream gave none (``UpstreamFile.upload_time_known`` False; see
:mod:`ministry.core.upstream_pages`), so the cooldown errs on the side of
hiding a file. The web side serves what :func:`cooled` keeps and shows what
:func:`held_back` lists on the project page; the mirror fetches only what is
cooled. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

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


def cooled(
    files: Iterable[UpstreamFile], now: datetime, min_age: float
) -> tuple[tuple[UpstreamFile, ...], datetime | None]:
    """The files uploaded at least ``min_age`` seconds before ``now``.

    Also returns when the next hidden file comes of age (None if none is
    hidden), so a page built from these files can be dropped at that moment.
    """
    files = tuple(files)
    held = held_back(files, now, min_age)
    hidden = {item.filename for item in held}
    shown = tuple(item for item in files if item.record.filename not in hidden)
    return shown, min((item.until for item in held), default=None)


def held_back(files: Iterable[UpstreamFile], now: datetime, min_age: float) -> tuple[HeldBack, ...]:
    """The files younger than ``min_age`` seconds at ``now``, each with when it comes of age.

    A file's age counts from its upload time, or from when this index first
    saw it when the upstream gave none (see the module notes).
    """
    if min_age <= 0:
        return ()
    age = timedelta(seconds=min_age)
    return tuple(
        HeldBack(
            item.record.filename,
            item.record.version,
            item.record.upload_time,
            item.upload_time_known,
            item.record.upload_time + age,
        )
        for item in files
        if item.record.upload_time + age > now
    )

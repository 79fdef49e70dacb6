"""What the proxy serves of one upstream page now: :class:`UpstreamView`, and how one is made.

Kept apart from :mod:`ministry.upstream.pages`, which decides *which* page
to serve and when to ask again; this only turns a page, as cooled down now,
into the records the catalog renders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ministry.core.cooldown import CooldownException, Cooled, HeldBack
from ministry.core.models import FileRecord, ProjectRecord
from ministry.core.upstream_pages import UpstreamFile, UpstreamPage


@dataclass(frozen=True)
class UpstreamView:
    """An upstream project as served now: its records, and where each file is upstream."""

    project: ProjectRecord
    files: tuple[FileRecord, ...]
    sources: Mapping[str, UpstreamFile] = field(repr=False)
    #: The files ``--upstream-min-age`` hides now, the first to come of age first.
    held_back: tuple[HeldBack, ...] = ()
    #: The cooldown exceptions of this project, and the files they release early.
    exceptions: tuple[CooldownException, ...] = ()
    released_early: tuple[str, ...] = ()


def moment(seconds: float) -> datetime:
    """Clock seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def view_of(
    page: UpstreamPage, cooled: Cooled, as_served: Callable[[FileRecord], FileRecord | None]
) -> UpstreamView:
    """The view of ``page`` with the files ``cooled`` shows, each as ``as_served`` offers it.

    ``as_served`` is the file cache's: a file it cannot offer now (None) is left out.
    """
    records: list[FileRecord] = []
    sources: dict[str, UpstreamFile] = {}
    for item in cooled.shown:
        record = as_served(item.record)
        if record is not None:
            records.append(record)
            sources[record.filename] = item
    project = ProjectRecord(
        page.project,
        page.project,
        0,
        moment(page.fetched),
        status=page.status,  # the upstream's PEP 792 marker, as the pages say it
        status_reason=page.status_reason,
    )
    return UpstreamView(
        project,
        tuple(records),
        sources,
        cooled.held_back,
        cooled.exceptions,
        cooled.released_early,
    )

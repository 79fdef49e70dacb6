"""What the mirror is doing and has done: for /mirror/, /health, /metrics and the bar.

:class:`MirrorStatus` is filled in by :class:`ministry.mirror.service.MirrorService`
as a run goes; ``ministry-admin mirror run`` draws :func:`progress_bar` from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from twisted.logger import Logger

log = Logger()

#: Errors kept in the status (the first ones of the run: they are the causes).
MAX_ERRORS = 100


@dataclass
class MirrorStatus:
    """What the mirror is doing and has done, for /mirror/, /health and /metrics."""

    every: float
    running: bool = False
    projects_done: int = 0
    projects_total: int = 0
    #: This run's (or the last run's) files fetched and bytes fetched.
    files_fetched: int = 0
    bytes_fetched: int = 0
    #: This run's selected files that were already verified in storage.
    files_present: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    #: This run's projects left out on purpose (the name policy), with why.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    last_success: float | None = None
    next_run: Callable[[], float | None] = lambda: None
    runs: int = 0
    failed_runs: int = 0
    skipped_runs: int = 0
    #: Totals over this process's life (Prometheus counters).
    files_fetched_total: int = 0
    bytes_fetched_total: int = 0
    errors_total: int = 0
    current: str | None = None

    def error(self, project: str, message: str) -> None:
        self.errors_total += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((project, message))
        log.warn("Mirror: {project}: {error}", project=project, error=message)

    def skip(self, project: str, reason: str) -> None:
        """Leave ``project`` out of this run on purpose: not an error, but said."""
        if len(self.skipped) < MAX_ERRORS:
            self.skipped.append((project, reason))
        log.info("Mirror: {project} skipped: {reason}", project=project, reason=reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": "running" if self.running else "idle",
            "every_seconds": self.every,
            "current_project": self.current,
            "projects_done": self.projects_done,
            "projects_total": self.projects_total,
            "files_fetched": self.files_fetched,
            "bytes_fetched": self.bytes_fetched,
            "files_present": self.files_present,
            "errors": [{"project": project, "error": error} for project, error in self.errors],
            "skipped": [{"project": project, "reason": reason} for project, reason in self.skipped],
            "run_started": _iso(self.started),
            "run_finished": _iso(self.finished),
            "last_success": _iso(self.last_success),
            "next_run": _iso(self.next_run()),
            "runs": self.runs,
            "failed_runs": self.failed_runs,
            "skipped_runs": self.skipped_runs,
        }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def progress_bar(status: MirrorStatus, width: int = 30) -> str:
    """One line: a bar of projects done, and what was fetched."""
    total = max(status.projects_total, 1)
    filled = width * status.projects_done // total
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {status.projects_done}/{status.projects_total} "
        f"projects, {status.files_fetched} files fetched ({status.bytes_fetched / 1e6:.1f} MB), "
        f"{status.files_present} already here, {len(status.errors)} errors"
    )

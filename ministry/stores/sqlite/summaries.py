"""Projects' summaries in SQL: taken inside a write's transaction, and filled in once.

``projects.summary`` and ``projects.summary_version`` are kept by the rule of
:mod:`ministry.core.summaries`, decided in Python on the store's one thread
inside the transaction of the claim, registration or offer that brings the
summary, so no other writer (not even another process) comes between the
comparison and the update.
"""

from __future__ import annotations

import sqlite3
from itertools import groupby

from ministry.core.models import parse_info
from ministry.core.summaries import (
    kept_release,
    metadata_summary,
    registered_summary,
    replacement,
)


def take(conn: sqlite3.Connection, name: str, summary: str, version: str | None) -> bool:
    """Offer ``summary`` of release ``version`` to project ``name``; whether it changed.

    Runs inside the caller's transaction; a project not hosted takes nothing.
    """
    row = conn.execute(
        "SELECT summary, summary_version FROM projects WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return False
    kept = replacement(summary, version, row[1])
    if kept is None or kept == tuple(row):
        return False
    conn.execute(
        "UPDATE projects SET summary = ?, summary_version = ? WHERE name = ?", (*kept, name)
    )
    return True


def fill(conn: sqlite3.Connection) -> None:
    """Migration 8: every project's summary, as the rule would have kept it from its records.

    A project's registration is offered first, then its latest file that has
    core metadata stored (the highest version; of equal ones, the last
    uploaded, as files win ties by coming later): only that one file's
    metadata is read and parsed. The order a registration and uploads came
    in is not stored, so a registration wins only over older releases.
    """
    for name, info in conn.execute("SELECT name, info FROM projects").fetchall():
        offered = registered_summary(parse_info(info))
        if offered is not None:
            take(conn, name, *offered)
    rows = conn.execute(
        "SELECT project, json_extract(record, '$.version'), serial FROM files"
        " WHERE metadata IS NOT NULL ORDER BY project, serial"
    ).fetchall()
    for name, files in groupby(rows, key=lambda row: row[0]):
        releases = [(version, serial) for _, version, serial in files]
        index = kept_release(version for version, _ in releases)
        assert index is not None  # groupby yields no empty group
        version, serial = releases[index]
        (metadata,) = conn.execute(
            "SELECT metadata FROM files WHERE project = ? AND serial = ?", (name, serial)
        ).fetchone()
        take(conn, name, metadata_summary(metadata), version)

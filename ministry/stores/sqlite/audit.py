"""The SQLite store's audit log: the ``audit`` table (see :mod:`.schema`).

Rows are appended and never changed; ``id`` (AUTOINCREMENT, never reused)
is the order they were appended in, so newest first is ``id`` descending
whatever the clocks of the writers said.
"""

from __future__ import annotations

import sqlite3

from ministry.core.audit import AuditEvent
from ministry.stores.sqlite.schema import transaction


def append_audit(conn: sqlite3.Connection, event: AuditEvent) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO audit (project, record) VALUES (?, ?)", (event.project, event.to_json())
        )


def list_audit(conn: sqlite3.Connection, project: str | None, limit: int) -> list[AuditEvent]:
    if limit < 1:  # SQLite reads a negative LIMIT as none at all
        return []
    if project is None:
        rows = conn.execute("SELECT record FROM audit ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = conn.execute(
            "SELECT record FROM audit WHERE project = ? ORDER BY id DESC LIMIT ?",
            (project, limit),
        )
    return [AuditEvent.from_json(record) for (record,) in rows]

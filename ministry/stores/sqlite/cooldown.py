"""The SQLite store's changes to proxied projects: cooldown exceptions and refreshes.

Tables ``cooldown_exceptions`` and ``cooldown_serials``. An exception, or a
refresh (``ministry-admin cache drop``), is about a proxied project, which
has no row in ``projects`` and so no serial of its own; yet another process
(the daemon, when ``ministry-admin`` wrote it) must hear of it to drop the
project's cached pages. So each change bumps the global serial and records
it in ``cooldown_serials`` (one row a project, kept after a revoke; the
name is older than refreshes), which
:func:`~ministry.stores.sqlite.projects.changed_since` reads beside
``projects``.
"""

from __future__ import annotations

import sqlite3

from ministry.core.cooldown import CooldownException, release_key
from ministry.stores.sqlite.projects import bump_serial
from ministry.stores.sqlite.schema import transaction


def _changed(conn: sqlite3.Connection, project: str) -> int:
    serial = bump_serial(conn)
    conn.execute(
        "INSERT INTO cooldown_serials (project, serial) VALUES (?, ?) "
        "ON CONFLICT (project) DO UPDATE SET serial = excluded.serial",
        (project, serial),
    )
    return serial


def refresh(conn: sqlite3.Connection, project: str) -> tuple[int, None]:
    """Announce ``project`` as changed upstream: every process asks the upstream again."""
    with transaction(conn):
        return _changed(conn, project), None


def allow(conn: sqlite3.Connection, exception: CooldownException) -> tuple[int, None]:
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO cooldown_exceptions (project, version, record) "
            "VALUES (?, ?, ?)",
            (
                exception.project,
                release_key(exception.version),
                exception.to_json(),
            ),
        )
        return _changed(conn, exception.project), None


def revoke(conn: sqlite3.Connection, project: str, version: str | None) -> tuple[int | None, bool]:
    with transaction(conn):
        gone = conn.execute(
            "DELETE FROM cooldown_exceptions WHERE project = ? AND version = ?",
            (project, release_key(version)),
        ).rowcount
        if not gone:
            return None, False
        return _changed(conn, project), True


def listed(conn: sqlite3.Connection, project: str | None) -> list[CooldownException]:
    if project is None:
        rows = conn.execute("SELECT record FROM cooldown_exceptions ORDER BY project, version")
    else:
        rows = conn.execute(
            "SELECT record FROM cooldown_exceptions WHERE project = ? ORDER BY version",
            (project,),
        )
    return [CooldownException.from_json(record) for (record,) in rows]

"""Projects and their files in SQL: the serial, reads, claims, registration, yanks, deletions.

Each function takes the connection first and runs on the store's one worker
thread (``SQLiteStore._run``); a write is one :func:`~schema.transaction`,
so a claim's check and its insert cannot be split by another writer, even
one in another process.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ministry.core.errors import FileExists, FilenameReused, SdistExists
from ministry.core.models import (
    SDIST,
    FileRecord,
    ProjectRecord,
    format_time,
    parse_info,
    parse_time,
    utcnow,
)
from ministry.core.names import release_version
from ministry.core.summaries import registered_summary
from ministry.stores.sqlite import summaries
from ministry.stores.sqlite.parsed_records import ParsedRecords
from ministry.stores.sqlite.schema import transaction


def last_serial(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone()[0]


def bump_serial(conn: sqlite3.Connection) -> int:
    return conn.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'serial' RETURNING value"
    ).fetchone()[0]


#: The columns a new project is written with; status and summary take their defaults.
_NEW_PROJECT_COLUMNS = "name, display_name, serial, created, info"
_PROJECT_COLUMNS = f"{_NEW_PROJECT_COLUMNS}, status, status_reason, summary, summary_version"


def _project(row: tuple[Any, ...]) -> ProjectRecord:
    # The columns are the fields, in order: positional arguments are a fifth
    # faster, and start-up builds one record per project.
    name, display_name, serial, created, info, status, status_reason, summary, of = row
    return ProjectRecord(
        name,
        display_name,
        serial,
        parse_time(created),
        parse_info(info),
        status,
        status_reason,
        summary,
        of,
    )


def list_projects(conn: sqlite3.Connection) -> list[ProjectRecord]:
    rows = conn.execute(f"SELECT {_PROJECT_COLUMNS} FROM projects ORDER BY name")
    return [_project(row) for row in rows]


def get_project(conn: sqlite3.Connection, name: str) -> ProjectRecord | None:
    row = conn.execute(
        f"SELECT {_PROJECT_COLUMNS} FROM projects WHERE name = ?", (name,)
    ).fetchone()
    return _project(row) if row else None


def list_files(
    conn: sqlite3.Connection, name: str, parsed: ParsedRecords | None = None
) -> list[FileRecord]:
    """A project's files in upload order; with ``parsed``, unchanged ones are not parsed again."""
    rows = conn.execute("SELECT record FROM files WHERE project = ? ORDER BY serial", (name,))
    if parsed is not None:
        return parsed.records(name, (record for (record,) in rows))
    return [FileRecord.from_dict(json.loads(record)) for (record,) in rows]


def get_file(conn: sqlite3.Connection, name: str, filename: str) -> FileRecord | None:
    row = conn.execute(
        "SELECT record FROM files WHERE project = ? AND filename = ?", (name, filename)
    ).fetchone()
    return FileRecord.from_dict(json.loads(row[0])) if row else None


def blob_keys(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT record FROM files")
    return {
        key for (record,) in rows for key in FileRecord.from_dict(json.loads(record)).stored_keys
    }


def get_metadata(conn: sqlite3.Connection, name: str, filename: str) -> bytes | None:
    row = conn.execute(
        "SELECT metadata FROM files WHERE project = ? AND filename = ?", (name, filename)
    ).fetchone()
    return row[0] if row else None


def _touch_project(conn: sqlite3.Connection, name: str, display_name: str, serial: int) -> None:
    """Create the project, or record that it changed at ``serial``; keep the rest."""
    conn.execute(
        f"INSERT INTO projects ({_NEW_PROJECT_COLUMNS}) VALUES (?, ?, ?, ?, '{{}}')"
        " ON CONFLICT (name) DO UPDATE SET serial = excluded.serial",
        (name, display_name, serial, format_time(utcnow())),
    )


def add_file(
    conn: sqlite3.Connection,
    record: FileRecord,
    display_name: str,
    metadata: bytes | None,
    summary: str | None = None,
) -> int | None:
    """The serial of the addition, or None when the same bytes were there already."""
    with transaction(conn):
        if _is_tombstoned(conn, record.project, record.filename):
            raise FilenameReused(record.filename, record.project)
        row = conn.execute(
            "SELECT sha256 FROM files WHERE project = ? AND filename = ?",
            (record.project, record.filename),
        ).fetchone()
        if row is not None:
            if row[0] == record.sha256:
                return None
            raise FileExists(
                f"File already exists: {record.filename} was already uploaded to "
                f"{record.project} with other contents (sha256 {row[0]}). A filename "
                "always means the same bytes: upload under a new version."
            )
        if record.packagetype == SDIST:
            conn.execute(
                "INSERT OR REPLACE INTO sdist_releases (project, release, filename)"
                " VALUES (?, ?, ?)",
                (record.project, _refuse_second_sdist(conn, record), record.filename),
            )
        serial = bump_serial(conn)
        _touch_project(conn, record.project, display_name, serial)
        if summary is not None:
            summaries.take(conn, record.project, summary, record.version)
        conn.execute(
            "INSERT INTO files (project, filename, sha256, serial, record, metadata)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.project,
                record.filename,
                record.sha256,
                serial,
                json.dumps(record.to_dict(), sort_keys=True),
                metadata,
            ),
        )
    return serial


def _refuse_second_sdist(conn: sqlite3.Connection, record: FileRecord) -> str:
    """One sdist per release, checked inside the claim's transaction; the release key.

    Check and insert share one IMMEDIATE transaction (the write lock is
    taken before the read), so two uploads of ``demo-7.0.tar.gz`` and
    ``demo-7.0.0.zip`` cannot both win, not even from two processes. The
    release is looked up by key in ``sdist_releases`` (filled from the stored
    records when it was made, so sdists from before this rule count too):
    reading every sdist of a project of thousands of releases made each
    upload into it slower than the last. An entry whose file was deleted
    since is stale, and the next sdist of the release takes it over.
    """
    release = release_version(record.version)
    row = conn.execute(
        "SELECT files.filename FROM sdist_releases JOIN files"
        " ON files.project = sdist_releases.project AND files.filename = sdist_releases.filename"
        " WHERE sdist_releases.project = ? AND sdist_releases.release = ?",
        (record.project, release),
    ).fetchone()
    if row is not None:
        raise SdistExists(record.filename, record.project, record.version, row[0])
    return release


def register(conn: sqlite3.Connection, name: str, display_name: str, info: dict) -> ProjectRecord:
    """Create the project or replace its info, taking its summary; the first display name stays."""
    with transaction(conn):
        serial = bump_serial(conn)
        conn.execute(
            f"INSERT INTO projects ({_NEW_PROJECT_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET serial = excluded.serial, info = excluded.info",
            (name, display_name, serial, format_time(utcnow()), json.dumps(info, sort_keys=True)),
        )
        offered = registered_summary(info)
        if offered is not None:
            summaries.take(conn, name, *offered)
        project = get_project(conn, name)
    assert project is not None  # written just now, in this transaction
    return project


def offer_summary(
    conn: sqlite3.Connection, name: str, summary: str, version: str | None
) -> tuple[int | None, bool]:
    """(The serial of the change or None, whether the summary changed)."""
    with transaction(conn):
        if not summaries.take(conn, name, summary, version):
            return None, False
        return _project_changed(conn, name), True


def changed_since(conn: sqlite3.Connection, serial: int) -> tuple[int, list[tuple[str, int]]]:
    """The global serial, and the projects (with their serials) changed after ``serial``.

    Proxied projects whose cooldown exceptions changed count too (see ``.cooldown``).
    """
    rows = conn.execute(
        "SELECT name, serial FROM projects WHERE serial > ? "
        "UNION ALL SELECT project, serial FROM cooldown_serials WHERE serial > ?",
        (serial, serial),
    )
    return last_serial(conn), list(rows)


# -- yanking and deleting ----------------------------------------------------------


def _is_tombstoned(conn: sqlite3.Connection, name: str, filename: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM tombstones WHERE project = ? AND filename = ?", (name, filename)
    ).fetchone()
    return row is not None


def _project_changed(conn: sqlite3.Connection, name: str) -> int:
    """Bump the global serial and make it the project's; the new serial."""
    serial = bump_serial(conn)
    conn.execute("UPDATE projects SET serial = ? WHERE name = ?", (serial, name))
    return serial


def set_yanked(
    conn: sqlite3.Connection, name: str, filenames: list[str], reason: str | None
) -> tuple[int | None, list[str]]:
    changed = []
    with transaction(conn):
        for filename in dict.fromkeys(filenames):
            record = get_file(conn, name, filename)
            if record is None or record.yanked == reason:
                continue
            conn.execute(
                "UPDATE files SET record = ? WHERE project = ? AND filename = ?",
                (
                    json.dumps(record.with_changes(yanked=reason).to_dict(), sort_keys=True),
                    name,
                    filename,
                ),
            )
            changed.append(filename)
        serial = _project_changed(conn, name) if changed else None
    return serial, changed


def delete_files(
    conn: sqlite3.Connection, name: str, filenames: list[str]
) -> tuple[int | None, list[FileRecord]]:
    removed = []
    with transaction(conn):
        for filename in dict.fromkeys(filenames):
            record = get_file(conn, name, filename)
            if record is None:
                continue
            conn.execute("DELETE FROM files WHERE project = ? AND filename = ?", (name, filename))
            conn.execute(
                "INSERT OR REPLACE INTO tombstones (project, filename, sha256) VALUES (?, ?, ?)",
                (name, filename, record.sha256),
            )
            removed.append(record)
        serial = _project_changed(conn, name) if removed else None
    return serial, removed


def tombstones(conn: sqlite3.Connection, name: str) -> dict[str, str]:
    rows = conn.execute("SELECT filename, sha256 FROM tombstones WHERE project = ?", (name,))
    return dict(rows.fetchall())


def add_tombstone(conn: sqlite3.Connection, name: str, filename: str, sha256: str) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO tombstones (project, filename, sha256) VALUES (?, ?, ?)",
            (name, filename, sha256),
        )


# -- project status (PEP 792) ----------------------------------------------------


def set_status(
    conn: sqlite3.Connection, name: str, status: str, reason: str | None
) -> tuple[int | None, ProjectRecord | None]:
    """(The serial of the change or None if nothing changed, the project afterwards)."""
    with transaction(conn):
        project = get_project(conn, name)
        if project is None or (project.status, project.status_reason) == (status, reason):
            return None, project
        conn.execute(
            "UPDATE projects SET status = ?, status_reason = ? WHERE name = ?",
            (status, reason, name),
        )
        serial = _project_changed(conn, name)
        return serial, get_project(conn, name)

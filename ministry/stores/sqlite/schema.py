"""The SQLite file's tables, how it is opened, its migrations and its transactions.

Schema (version 8)::

    meta(key TEXT PRIMARY KEY, value INTEGER)
        'schema_version' -> SCHEMA_VERSION, 'serial' -> the global serial
    projects(name TEXT PRIMARY KEY,   -- canonical name
             display_name TEXT,       -- as first uploaded or registered
             serial INTEGER,          -- global serial of the last change
             created TEXT,            -- format_time(), microseconds kept
             info TEXT,               -- JSON: field -> list of values
             status TEXT,             -- PEP 792 marker: 'active' unless set
             status_reason TEXT,      -- why, or NULL
             summary TEXT,            -- its latest release's Summary, '' for none
             summary_version TEXT)    -- the release it came from, or NULL (.summaries)
    files(project TEXT REFERENCES projects(name),
          filename TEXT,
          sha256 TEXT,                -- compared when a filename is claimed again
          serial INTEGER,             -- global serial that added it: upload order
          record TEXT,                -- JSON of FileRecord.to_dict()
          metadata BLOB,              -- core metadata bytes, or NULL
          PRIMARY KEY (project, filename))
    tombstones(project, filename, sha256)   -- deleted files: never reused
    users(name TEXT PRIMARY KEY, record TEXT)          -- JSON of UserRecord
    tokens(id TEXT PRIMARY KEY, username TEXT, record TEXT)  -- TokenRecord
    roles(project, username, role, PRIMARY KEY (project, username))
    audit(id INTEGER PRIMARY KEY AUTOINCREMENT,  -- order of appending
          project TEXT,               -- canonical, for listing one project's
          record TEXT)                -- JSON of AuditEvent.to_dict()
    cooldown_exceptions(project, version,  -- version '' for every version
                        record)            -- JSON of CooldownException.to_dict()
    cooldown_serials(project TEXT PRIMARY KEY, serial)  -- see .cooldown
    teams(name TEXT PRIMARY KEY, created TEXT)     -- see .teams
    team_members(team, username, PRIMARY KEY (team, username))
    sdist_releases(project, release,  -- names.release_version() of an sdist
                   filename,          -- the sdist claiming it; stale once deleted
                   PRIMARY KEY (project, release))

Roles name users without a foreign key: an htpasswd user owns projects
too, and is not in ``users``; a team holds roles as ``@team``
(``ministry.core.teams``), and its members may be htpasswd users too.

A file's record is one JSON document rather than a column per field because
both stores serialise records with ``FileRecord.to_dict``, so they agree on
every field by construction, and a new field with a default needs no
migration. ``metadata`` is the last column: SQLite reads a row's overflow
pages only up to the column asked for, so listing files never loads it.

Durability: WAL with ``synchronous=NORMAL``. A crash of the process loses
nothing committed; a power cut may lose the last transactions (never corrupt
the file). The blob is fsynced before its record is claimed, so the worst
case is an orphan blob, never a record without bytes.

Migrations: ``MIGRATIONS[n]`` takes the schema from version n to n + 1; a
new schema change is one more entry, of SQL statements and, for data SQL
cannot compute, Python steps run in the same transaction. A database
written by a newer ministry is refused rather than guessed at. Version 8
fills in the summaries of existing projects from their stored metadata
(``summaries.fill``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ministry.core.names import release_version
from ministry.stores.sqlite import summaries

#: One step of a migration: a statement, or Python for what SQL cannot compute.
Step = str | Callable[[sqlite3.Connection], None]

MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (
        "INSERT INTO meta (key, value) VALUES ('serial', 0)",
        """CREATE TABLE projects (
            name TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            serial INTEGER NOT NULL,
            created TEXT NOT NULL,
            info TEXT NOT NULL
        )""",
        """CREATE TABLE files (
            project TEXT NOT NULL REFERENCES projects (name),
            filename TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            serial INTEGER NOT NULL,
            record TEXT NOT NULL,
            metadata BLOB,
            PRIMARY KEY (project, filename)
        )""",
        "CREATE INDEX files_in_upload_order ON files (project, serial)",
    ),
    (
        """CREATE TABLE tombstones (
            project TEXT NOT NULL,
            filename TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (project, filename)
        )""",
        "CREATE TABLE users (name TEXT PRIMARY KEY, record TEXT NOT NULL)",
        """CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            record TEXT NOT NULL
        )""",
        "CREATE INDEX tokens_by_user ON tokens (username)",
        """CREATE TABLE roles (
            project TEXT NOT NULL,
            username TEXT NOT NULL,
            role TEXT NOT NULL,
            PRIMARY KEY (project, username)
        )""",
        "CREATE INDEX roles_by_user ON roles (username)",
    ),
    (
        "ALTER TABLE projects ADD COLUMN status TEXT NOT NULL DEFAULT 'active'",
        "ALTER TABLE projects ADD COLUMN status_reason TEXT",
    ),
    (
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            project TEXT NOT NULL,
            record TEXT NOT NULL
        )""",
        "CREATE INDEX audit_by_project ON audit (project, id)",
    ),
    (
        """CREATE TABLE cooldown_exceptions (
            project TEXT NOT NULL,
            version TEXT NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (project, version)
        )""",
        """CREATE TABLE cooldown_serials (
            project TEXT PRIMARY KEY,
            serial INTEGER NOT NULL
        )""",
    ),
    (
        "CREATE TABLE teams (name TEXT PRIMARY KEY, created TEXT NOT NULL)",
        """CREATE TABLE team_members (
            team TEXT NOT NULL REFERENCES teams (name),
            username TEXT NOT NULL,
            PRIMARY KEY (team, username)
        )""",
        "CREATE INDEX team_members_by_user ON team_members (username)",
    ),
    (
        """CREATE TABLE sdist_releases (
            project TEXT NOT NULL,
            release TEXT NOT NULL,
            filename TEXT NOT NULL,
            PRIMARY KEY (project, release)
        )""",
        # release_version() is the Python function connect() registers.
        """INSERT OR REPLACE INTO sdist_releases (project, release, filename)
            SELECT project, release_version(json_extract(record, '$.version')), filename
            FROM files WHERE json_extract(record, '$.packagetype') = 'sdist'""",
    ),
    (
        "ALTER TABLE projects ADD COLUMN summary TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE projects ADD COLUMN summary_version TEXT",
        summaries.fill,
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: str) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # Autocommit mode: transactions are explicit (transaction). Any thread
    # may use the connection, but only the store's one worker ever does.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.create_function("release_version", 1, release_version, deterministic=True)
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction; IMMEDIATE takes the write lock before any read."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = row[0] if row else 0
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"{path} has schema version {version}, newer than this ministry "
            f"understands ({SCHEMA_VERSION}); upgrade ministry to use it"
        )
    for steps in MIGRATIONS[version:]:
        with transaction(conn):
            for step in steps:
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn)
            version += 1
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (version,),
            )

"""The embedded metadata store: one SQLite file, for a single process.

This is the default so that ``twistd ministry`` needs nothing else installed
or running. Several processes must use the Redis store instead: this one
notifies subscribers only of changes made through itself.

Threading. ``sqlite3`` blocks, and the reactor must never wait on the disk,
so every statement runs on one dedicated worker thread (a ``ThreadPool`` of
exactly one thread). One thread also serialises all writes, so a claim (read
the filename, then insert) cannot interleave with another claim, and work
queued right after :meth:`SQLiteStore.startService` still runs after the
database is open, because the queue is first in, first out.

Schema (version 1)::

    meta(key TEXT PRIMARY KEY, value INTEGER)
        'schema_version' -> 1, 'serial' -> the global serial
    projects(name TEXT PRIMARY KEY,   -- canonical name
             display_name TEXT,       -- as first uploaded or registered
             serial INTEGER,          -- global serial of the last change
             created TEXT,            -- format_time(), microseconds kept
             info TEXT)               -- JSON: field -> list of values
    files(project TEXT REFERENCES projects(name),
          filename TEXT,
          sha256 TEXT,                -- compared when a filename is claimed again
          serial INTEGER,             -- global serial that added it: upload order
          record TEXT,                -- JSON of FileRecord.to_dict()
          metadata BLOB,              -- core metadata bytes, or NULL
          PRIMARY KEY (project, filename))

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
new schema change is one more entry. A database written by a newer
ministry is refused rather than guessed at.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from ministry.core.errors import FileExists, StoreUnavailable
from ministry.core.models import FileRecord, ProjectRecord, format_time, parse_time, utcnow
from ministry.interfaces import IMetadataStore

log = Logger()

T = TypeVar("T")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
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
)

SCHEMA_VERSION = len(MIGRATIONS)


@implementer(IMetadataStore)
class SQLiteStore(Service):
    """:class:`IMetadataStore` on an SQLite file, all I/O on one thread."""

    def __init__(self, path: str) -> None:
        # Nothing else: the database opens in startService, not at wiring time.
        self.path = path
        self._reactor: IReactorFromThreads | None = None
        self._pool: ThreadPool | None = None
        self._conn: sqlite3.Connection | None = None
        self._open_error: str | None = None
        self._subscribers: list[Callable[[str], None]] = []

    # -- service ---------------------------------------------------------------

    def startService(self) -> Deferred[None]:
        """Start the worker thread and open the database on it.

        Fires once the schema is ready. Parents (``MultiService``) ignore the
        result, which is safe: later calls queue behind the opening. If it
        fails, the reason is logged and every call fails with
        :class:`StoreUnavailable` carrying it, so requests get a 503 that
        says why.
        """
        from twisted.internet import reactor  # the reactor twistd installed

        super().startService()
        self._reactor = reactor
        self._pool = ThreadPool(1, 1, name=f"ministry-sqlite:{self.path}")
        self._pool.start()
        d = deferToThreadPool(reactor, self._pool, self._open)
        d.addErrback(self._opening_failed)
        return d

    def stopService(self) -> Deferred[None]:
        """Close the database after the work already queued, then stop the thread."""
        super().stopService()
        pool, self._pool = self._pool, None
        if pool is None:
            return succeed(None)
        d = deferToThreadPool(self._reactor, pool, self._close)
        d.addBoth(_stop_pool_then, pool)
        return d

    def _open(self) -> None:
        try:
            self._conn = _connect(self.path)
        except Exception as error:
            # Set here, on the store's thread, so calls queued behind the
            # opening already see why it failed.
            self._open_error = f"The metadata store could not be opened: {error}"
            raise

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _opening_failed(self, failure: Failure) -> None:
        log.failure("Could not open the metadata store at {path}", failure, path=self.path)

    def _run(self, work: Callable[..., T], *args: Any) -> Deferred[T]:
        """Run ``work(connection, *args)`` on the store's thread."""
        if self._pool is None:
            return fail(StoreUnavailable("The metadata store is not running."))
        return deferToThreadPool(self._reactor, self._pool, self._with_connection, work, *args)

    def _with_connection(self, work: Callable[..., T], *args: Any) -> T:
        if self._conn is None:
            raise StoreUnavailable(self._open_error or "The metadata store is not open.")
        return work(self._conn, *args)

    # -- reads -----------------------------------------------------------------

    def last_serial(self) -> Deferred[int]:
        return self._run(_last_serial)

    def list_projects(self) -> Deferred[list[ProjectRecord]]:
        return self._run(_list_projects)

    def get_project(self, name: str) -> Deferred[ProjectRecord | None]:
        return self._run(_get_project, name)

    def list_files(self, name: str) -> Deferred[list[FileRecord]]:
        return self._run(_list_files, name)

    def get_file(self, name: str, filename: str) -> Deferred[FileRecord | None]:
        return self._run(_get_file, name, filename)

    def get_metadata(self, name: str, filename: str) -> Deferred[bytes | None]:
        return self._run(_get_metadata, name, filename)

    # -- writes ----------------------------------------------------------------

    def add_file(
        self, record: FileRecord, display_name: str, metadata: bytes | None
    ) -> Deferred[bool]:
        d = self._run(_add_file, record, display_name, metadata)
        d.addCallback(self._notify_if_added, record.project)
        return d

    def register(self, name: str, display_name: str, info: dict) -> Deferred[ProjectRecord]:
        d = self._run(_register, name, display_name, info)
        d.addCallback(self._notify_registered)
        return d

    # -- change notification -----------------------------------------------------

    def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(name)`` on the reactor thread after each committed change.

        Callbacks run before the change's Deferred fires to its caller, so a
        page cache is dropped before an uploader is told the upload worked.
        """
        self._subscribers.append(callback)

    def _notify_if_added(self, added: bool, name: str) -> bool:
        if added:
            self._notify(name)
        return added

    def _notify_registered(self, project: ProjectRecord) -> ProjectRecord:
        self._notify(project.name)
        return project

    def _notify(self, name: str) -> None:
        # A broken subscriber must not turn a committed change into an error.
        for callback in list(self._subscribers):
            try:
                callback(name)
            except Exception:
                log.failure(
                    "Store subscriber {callback!r} failed for {name}", callback=callback, name=name
                )


def _stop_pool_then(result: T, pool: ThreadPool) -> T:
    pool.stop()
    return result


# -- work done on the store's thread --------------------------------------------


def _connect(path: str) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # Autocommit mode: transactions are explicit (_transaction). Any thread
    # may use the connection, but only the store's one worker ever does.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
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
    for statements in MIGRATIONS[version:]:
        with _transaction(conn):
            for statement in statements:
                conn.execute(statement)
            version += 1
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (version,),
            )


def _last_serial(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone()[0]


def _bump_serial(conn: sqlite3.Connection) -> int:
    return conn.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'serial' RETURNING value"
    ).fetchone()[0]


_PROJECT_COLUMNS = "name, display_name, serial, created, info"


def _project(row: tuple[Any, ...]) -> ProjectRecord:
    name, display_name, serial, created, info = row
    return ProjectRecord(
        name=name,
        display_name=display_name,
        serial=serial,
        created=parse_time(created),
        info=json.loads(info),
    )


def _list_projects(conn: sqlite3.Connection) -> list[ProjectRecord]:
    rows = conn.execute(f"SELECT {_PROJECT_COLUMNS} FROM projects ORDER BY name")
    return [_project(row) for row in rows]


def _get_project(conn: sqlite3.Connection, name: str) -> ProjectRecord | None:
    row = conn.execute(
        f"SELECT {_PROJECT_COLUMNS} FROM projects WHERE name = ?", (name,)
    ).fetchone()
    return _project(row) if row else None


def _list_files(conn: sqlite3.Connection, name: str) -> list[FileRecord]:
    rows = conn.execute("SELECT record FROM files WHERE project = ? ORDER BY serial", (name,))
    return [FileRecord.from_dict(json.loads(record)) for (record,) in rows]


def _get_file(conn: sqlite3.Connection, name: str, filename: str) -> FileRecord | None:
    row = conn.execute(
        "SELECT record FROM files WHERE project = ? AND filename = ?", (name, filename)
    ).fetchone()
    return FileRecord.from_dict(json.loads(row[0])) if row else None


def _get_metadata(conn: sqlite3.Connection, name: str, filename: str) -> bytes | None:
    row = conn.execute(
        "SELECT metadata FROM files WHERE project = ? AND filename = ?", (name, filename)
    ).fetchone()
    return row[0] if row else None


def _touch_project(conn: sqlite3.Connection, name: str, display_name: str, serial: int) -> None:
    """Create the project, or record that it changed at ``serial``; keep the rest."""
    conn.execute(
        f"INSERT INTO projects ({_PROJECT_COLUMNS}) VALUES (?, ?, ?, ?, '{{}}')"
        " ON CONFLICT (name) DO UPDATE SET serial = excluded.serial",
        (name, display_name, serial, format_time(utcnow())),
    )


def _add_file(
    conn: sqlite3.Connection, record: FileRecord, display_name: str, metadata: bytes | None
) -> bool:
    with _transaction(conn):
        row = conn.execute(
            "SELECT sha256 FROM files WHERE project = ? AND filename = ?",
            (record.project, record.filename),
        ).fetchone()
        if row is not None:
            if row[0] == record.sha256:
                return False
            raise FileExists(
                f"File already exists: {record.filename} was already uploaded to "
                f"{record.project} with other contents (sha256 {row[0]}). A filename "
                "always means the same bytes: upload under a new version."
            )
        serial = _bump_serial(conn)
        _touch_project(conn, record.project, display_name, serial)
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
    return True


def _register(conn: sqlite3.Connection, name: str, display_name: str, info: dict) -> ProjectRecord:
    """Create the project or replace its info; the first display name stays."""
    with _transaction(conn):
        serial = _bump_serial(conn)
        row = conn.execute(
            f"INSERT INTO projects ({_PROJECT_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET serial = excluded.serial, info = excluded.info"
            f" RETURNING {_PROJECT_COLUMNS}",
            (name, display_name, serial, format_time(utcnow()), json.dumps(info, sort_keys=True)),
        ).fetchone()
    return _project(row)

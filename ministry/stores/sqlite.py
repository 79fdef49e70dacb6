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

Schema (version 2)::

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
    tombstones(project, filename, sha256)   -- deleted files: never reused
    users(name TEXT PRIMARY KEY, record TEXT)          -- JSON of UserRecord
    tokens(id TEXT PRIMARY KEY, username TEXT, record TEXT)  -- TokenRecord
    roles(project, username, role, PRIMARY KEY (project, username))

Roles name users without a foreign key: an htpasswd user owns projects
too, and is not in ``users``.

A file's record is one JSON document rather than a column per field because
both stores serialise records with ``FileRecord.to_dict``, so they agree on
every field by construction, and a new field with a default needs no
migration. ``metadata`` is the last column: SQLite reads a row's overflow
pages only up to the column asked for, so listing files never loads it.

Durability: WAL with ``synchronous=NORMAL``. A crash of the process loses
nothing committed; a power cut may lose the last transactions (never corrupt
the file). The blob is fsynced before its record is claimed, so the worst
case is an orphan blob, never a record without bytes.

Other writers. ``ministry-admin`` writes to the same file from another
process (yank, delete, import), and page caches must hear of it. Every
``POLL_INTERVAL`` seconds the store asks which projects changed after the
last serial it knows of and announces those that this process did not
change itself (it remembers the serials of its own changes), so an admin
command's change reaches the pages within a second or so.

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
from dataclasses import replace
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from ministry.core.errors import FileExists, FilenameReused, SdistExists, StoreUnavailable
from ministry.core.models import (
    OWNER,
    ROLES,
    SDIST,
    FileRecord,
    ProjectRecord,
    TokenRecord,
    UserRecord,
    format_time,
    parse_info,
    parse_time,
    utcnow,
)
from ministry.core.names import release_version
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
)

#: Seconds between two looks for changes made by another process.
POLL_INTERVAL = 1.0

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
        self._poller: LoopingCall | None = None
        self._seen_serial = 0  # every change up to this serial has been announced
        self._own_serials: set[int] = set()  # changes made here, after _seen_serial

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
        d.addCallbacks(self._watch_other_writers, self._opening_failed)
        return d

    def stopService(self) -> Deferred[None]:
        """Close the database after the work already queued, then stop the thread."""
        super().stopService()
        poller, self._poller = self._poller, None
        if poller is not None and poller.running:
            poller.stop()
        pool, self._pool = self._pool, None
        if pool is None:
            return succeed(None)
        d = deferToThreadPool(self._reactor, pool, self._close)
        d.addBoth(_stop_pool_then, pool)
        return d

    def _open(self) -> int:
        try:
            self._conn = _connect(self.path)
        except Exception as error:
            # Set here, on the store's thread, so calls queued behind the
            # opening already see why it failed.
            self._open_error = f"The metadata store could not be opened: {error}"
            raise
        return _last_serial(self._conn)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _watch_other_writers(self, serial: int) -> None:
        """Start looking for other processes' changes made after ``serial``.

        The serial was read as the database opened, before any read that
        could fill a cache, so no change after it can go unannounced.
        """
        self._seen_serial = serial
        if self._pool is None:  # stopped while opening
            return
        self._poller = LoopingCall(self._look_for_other_writers)
        self._poller.clock = self._reactor
        self._poller.start(POLL_INTERVAL, now=False)

    def _look_for_other_writers(self) -> Deferred[None]:
        d = self._run(_changed_since, self._seen_serial)
        d.addCallbacks(self._announce_other_writers, self._poll_failed)
        return d

    def _announce_other_writers(self, changes: tuple[int, list[tuple[str, int]]]) -> None:
        serial, changed = changes
        for name, project_serial in changed:
            if project_serial not in self._own_serials:
                self._notify(name)
        self._seen_serial = max(self._seen_serial, serial)
        self._own_serials = {s for s in self._own_serials if s > self._seen_serial}

    def _poll_failed(self, failure: Failure) -> None:
        # Logged, never raised: a failure would stop the LoopingCall for good.
        if self._pool is not None:
            log.failure("Could not look for other writers' changes", failure)

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

    def blob_keys(self) -> Deferred[set[str]]:
        return self._run(_blob_keys)

    # -- writes ----------------------------------------------------------------

    def add_file(
        self, record: FileRecord, display_name: str, metadata: bytes | None
    ) -> Deferred[bool]:
        d = self._run(_add_file, record, display_name, metadata)
        d.addCallback(self._notify_if_changed, record.project)
        d.addCallback(lambda serial: serial is not None)
        return d

    def register(self, name: str, display_name: str, info: dict) -> Deferred[ProjectRecord]:
        d = self._run(_register, name, display_name, info)
        d.addCallback(self._notify_registered)
        return d

    # -- yanking and deleting ------------------------------------------------------

    def set_yanked(
        self, name: str, filenames: list[str], reason: str | None
    ) -> Deferred[list[str]]:
        d = self._run(_set_yanked, name, list(filenames), reason)
        return d.addCallback(self._changed_files, name)

    def delete_files(self, name: str, filenames: list[str]) -> Deferred[list[FileRecord]]:
        d = self._run(_delete_files, name, list(filenames))
        return d.addCallback(self._changed_files, name)

    def _changed_files(self, outcome: tuple[int | None, list[Any]], name: str) -> list[Any]:
        serial, changed = outcome
        self._notify_if_changed(serial, name)
        return changed

    # -- users, tokens and roles ---------------------------------------------------

    def add_user(self, user: UserRecord) -> Deferred[bool]:
        return self._run(_add_user, user)

    def get_user(self, name: str) -> Deferred[UserRecord | None]:
        return self._run(_get_user, name)

    def list_users(self) -> Deferred[list[UserRecord]]:
        return self._run(_list_users)

    def set_password(self, name: str, password_hash: str) -> Deferred[bool]:
        return self._run(_set_password, name, password_hash)

    def remove_user(self, name: str) -> Deferred[bool]:
        return self._run(_remove_user, name)

    def add_token(self, token: TokenRecord) -> Deferred[bool]:
        return self._run(_add_token, token)

    def get_token(self, token_id: str) -> Deferred[TokenRecord | None]:
        return self._run(_get_token, token_id)

    def list_tokens(self, username: str | None = None) -> Deferred[list[TokenRecord]]:
        return self._run(_list_tokens, username)

    def revoke_token(self, token_id: str) -> Deferred[bool]:
        return self._run(_revoke_token, token_id)

    def get_roles(self, name: str) -> Deferred[dict[str, str]]:
        return self._run(_get_roles, name)

    def user_roles(self, username: str) -> Deferred[dict[str, str]]:
        return self._run(_user_roles, username)

    def set_role(self, name: str, username: str, role: str | None) -> Deferred[None]:
        if role is not None and role not in ROLES:
            return fail(ValueError(f"unknown role {role!r}"))
        return self._run(_set_role, name, username, role)

    def claim_project(self, name: str, username: str) -> Deferred[dict[str, str]]:
        return self._run(_claim_project, name, username)

    # -- change notification -----------------------------------------------------

    def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(name)`` on the reactor thread after each committed change.

        Callbacks run before the change's Deferred fires to its caller, so a
        page cache is dropped before an uploader is told the upload worked.
        """
        self._subscribers.append(callback)

    def _notify_if_changed(self, serial: int | None, name: str) -> int | None:
        """Announce a change made here (``serial`` None: nothing changed)."""
        if serial is not None:
            self._own_serials.add(serial)
            self._notify(name)
        return serial

    def _notify_registered(self, project: ProjectRecord) -> ProjectRecord:
        self._own_serials.add(project.serial)
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
        info=parse_info(info),
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


def _blob_keys(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT record FROM files")
    return {FileRecord.from_dict(json.loads(record)).blob_key for (record,) in rows}


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
) -> int | None:
    """The serial of the addition, or None when the same bytes were there already."""
    with _transaction(conn):
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
            _refuse_second_sdist(conn, record)
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
    return serial


def _refuse_second_sdist(conn: sqlite3.Connection, record: FileRecord) -> None:
    """One sdist per release, checked inside the claim's transaction.

    Check and insert share one IMMEDIATE transaction (the write lock is
    taken before the read), so two uploads of ``demo-7.0.tar.gz`` and
    ``demo-7.0.0.zip`` cannot both win, not even from two processes. Stored
    records are read, so sdists from before this rule count too.
    """
    release = release_version(record.version)
    rows = conn.execute(
        "SELECT filename, json_extract(record, '$.version') FROM files"
        " WHERE project = ? AND json_extract(record, '$.packagetype') = ?",
        (record.project, SDIST),
    )
    for filename, version in rows:
        if release_version(version) == release:
            raise SdistExists(record.filename, record.project, record.version, filename)


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


def _changed_since(conn: sqlite3.Connection, serial: int) -> tuple[int, list[tuple[str, int]]]:
    """The global serial, and the projects (with their serials) changed after ``serial``."""
    rows = conn.execute("SELECT name, serial FROM projects WHERE serial > ?", (serial,))
    return _last_serial(conn), list(rows)


# -- yanking and deleting ----------------------------------------------------------


def _is_tombstoned(conn: sqlite3.Connection, name: str, filename: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM tombstones WHERE project = ? AND filename = ?", (name, filename)
    ).fetchone()
    return row is not None


def _project_changed(conn: sqlite3.Connection, name: str) -> int:
    """Bump the global serial and make it the project's; the new serial."""
    serial = _bump_serial(conn)
    conn.execute("UPDATE projects SET serial = ? WHERE name = ?", (serial, name))
    return serial


def _set_yanked(
    conn: sqlite3.Connection, name: str, filenames: list[str], reason: str | None
) -> tuple[int | None, list[str]]:
    changed = []
    with _transaction(conn):
        for filename in dict.fromkeys(filenames):
            record = _get_file(conn, name, filename)
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


def _delete_files(
    conn: sqlite3.Connection, name: str, filenames: list[str]
) -> tuple[int | None, list[FileRecord]]:
    removed = []
    with _transaction(conn):
        for filename in dict.fromkeys(filenames):
            record = _get_file(conn, name, filename)
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


# -- users, tokens and roles --------------------------------------------------------


def _user_json(user: UserRecord) -> str:
    return json.dumps(user.to_dict(), sort_keys=True)


def _add_user(conn: sqlite3.Connection, user: UserRecord) -> bool:
    with _transaction(conn):
        cursor = conn.execute(
            "INSERT OR IGNORE INTO users (name, record) VALUES (?, ?)",
            (user.name, _user_json(user)),
        )
    return cursor.rowcount == 1


def _get_user(conn: sqlite3.Connection, name: str) -> UserRecord | None:
    row = conn.execute("SELECT record FROM users WHERE name = ?", (name,)).fetchone()
    return UserRecord.from_dict(json.loads(row[0])) if row else None


def _list_users(conn: sqlite3.Connection) -> list[UserRecord]:
    rows = conn.execute("SELECT record FROM users ORDER BY name")
    return [UserRecord.from_dict(json.loads(record)) for (record,) in rows]


def _set_password(conn: sqlite3.Connection, name: str, password_hash: str) -> bool:
    with _transaction(conn):
        user = _get_user(conn, name)
        if user is None:
            return False
        changed = replace(user, password_hash=password_hash)
        conn.execute("UPDATE users SET record = ? WHERE name = ?", (_user_json(changed), name))
    return True


def _remove_user(conn: sqlite3.Connection, name: str) -> bool:
    with _transaction(conn):
        if conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
            return False
        conn.execute("DELETE FROM tokens WHERE username = ?", (name,))
        conn.execute("DELETE FROM roles WHERE username = ?", (name,))
    return True


def _add_token(conn: sqlite3.Connection, token: TokenRecord) -> bool:
    with _transaction(conn):
        if _get_user(conn, token.username) is None:
            return False
        conn.execute(
            "INSERT INTO tokens (id, username, record) VALUES (?, ?, ?)",
            (token.id, token.username, json.dumps(token.to_dict(), sort_keys=True)),
        )
    return True


def _get_token(conn: sqlite3.Connection, token_id: str) -> TokenRecord | None:
    row = conn.execute("SELECT record FROM tokens WHERE id = ?", (token_id,)).fetchone()
    return TokenRecord.from_dict(json.loads(row[0])) if row else None


def _list_tokens(conn: sqlite3.Connection, username: str | None) -> list[TokenRecord]:
    if username is None:
        rows = conn.execute("SELECT record FROM tokens")
    else:
        rows = conn.execute("SELECT record FROM tokens WHERE username = ?", (username,))
    tokens = [TokenRecord.from_dict(json.loads(record)) for (record,) in rows]
    return sorted(tokens, key=lambda token: (token.created, token.id))


def _revoke_token(conn: sqlite3.Connection, token_id: str) -> bool:
    with _transaction(conn):
        return conn.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount == 1


def _get_roles(conn: sqlite3.Connection, name: str) -> dict[str, str]:
    rows = conn.execute("SELECT username, role FROM roles WHERE project = ?", (name,))
    return dict(rows)


def _user_roles(conn: sqlite3.Connection, username: str) -> dict[str, str]:
    rows = conn.execute("SELECT project, role FROM roles WHERE username = ?", (username,))
    return dict(rows)


def _set_role(conn: sqlite3.Connection, name: str, username: str, role: str | None) -> None:
    with _transaction(conn):
        if role is None:
            conn.execute("DELETE FROM roles WHERE project = ? AND username = ?", (name, username))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO roles (project, username, role) VALUES (?, ?, ?)",
                (name, username, role),
            )


def _claim_project(conn: sqlite3.Connection, name: str, username: str) -> dict[str, str]:
    with _transaction(conn):
        if not _get_roles(conn, name):
            conn.execute(
                "INSERT INTO roles (project, username, role) VALUES (?, ?, ?)",
                (name, username, OWNER),
            )
        return _get_roles(conn, name)

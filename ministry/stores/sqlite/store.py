"""The embedded metadata store itself: :class:`SQLiteStore`, its thread and its polls.

Threading. ``sqlite3`` blocks, and the reactor must never wait on the disk,
so every statement runs on one dedicated worker thread (a ``ThreadPool`` of
exactly one thread). One thread also serialises all writes, so a claim (read
the filename, then insert) cannot interleave with another claim, and work
queued right after :meth:`SQLiteStore.startService` still runs after the
database is open, because the queue is first in, first out.

Other writers. ``ministry-admin`` writes to the same file from another
process (yank, delete, import), and page caches must hear of it. Every
``POLL_INTERVAL`` seconds the store asks which projects changed after the
last serial it knows of and announces those that this process did not
change itself (it remembers the serials of its own changes), so an admin
command's change reaches the pages within a second or so.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from ministry.core.audit import DEFAULT_LIMIT, AuditEvent
from ministry.core.cooldown import CooldownException
from ministry.core.errors import StoreUnavailable
from ministry.core.models import (
    ROLES,
    STATUSES,
    FileRecord,
    ProjectRecord,
    TeamRecord,
    TokenRecord,
    UserRecord,
)
from ministry.interfaces import ILease, IMetadataStore
from ministry.interfaces.cache_index import ICacheIndex
from ministry.stores.cache_index import EVICTION_LEASE, LocalCacheIndex
from ministry.stores.lease import LocalLease
from ministry.stores.sqlite import accounts, audit, cooldown, projects, schema, teams
from ministry.stores.sqlite.parsed_records import ParsedRecords
from ministry.stores.subscribers import Subscribers

log = Logger()

T = TypeVar("T")

#: Seconds between two looks for changes made by another process.
POLL_INTERVAL = 1.0


@implementer(IMetadataStore)
class SQLiteStore(Service):
    """:class:`IMetadataStore` on an SQLite file, all I/O on one thread."""

    def __init__(self, path: str, clock: IReactorTime | None = None) -> None:
        """Settings only: the database opens in startService, not at wiring time.

        ``clock`` times the looks for other writers and the leases: a
        ``task.Clock`` in tests, by default the global reactor found at start.
        """
        self.path = path
        self._clock = clock
        self._reactor: IReactorFromThreads | None = None
        self._pool: ThreadPool | None = None
        self._conn: sqlite3.Connection | None = None
        self._open_error: str | None = None
        self._subscribers = Subscribers()
        self._leases: dict[str, LocalLease] = {}
        self._cache_index: LocalCacheIndex | None = None
        self._poller: LoopingCall | None = None
        self._seen_serial = 0  # every change up to this serial has been announced
        self._own_serials: set[int] = set()  # changes made here, after _seen_serial
        self._parsed = ParsedRecords()  # big projects' records, not parsed twice

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
        self._clock = self._clock or reactor
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
            self._conn = schema.connect(self.path)
        except Exception as error:
            # Set here, on the store's thread, so calls queued behind the
            # opening already see why it failed.
            self._open_error = f"The metadata store could not be opened: {error}"
            raise
        return projects.last_serial(self._conn)

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
        self._poller.clock = self._clock
        self._poller.start(POLL_INTERVAL, now=False)

    def _look_for_other_writers(self) -> Deferred[None]:
        d = self._run(projects.changed_since, self._seen_serial)
        d.addCallbacks(self._announce_other_writers, self._poll_failed)
        return d

    def _announce_other_writers(self, changes: tuple[int, list[tuple[str, int]]]) -> None:
        serial, changed = changes
        for name, project_serial in changed:
            if project_serial not in self._own_serials:
                self._subscribers.notify(name)
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
        return self._run(projects.last_serial)

    def list_projects(self) -> Deferred[list[ProjectRecord]]:
        return self._run(projects.list_projects)

    def get_project(self, name: str) -> Deferred[ProjectRecord | None]:
        return self._run(projects.get_project, name)

    def list_files(self, name: str) -> Deferred[list[FileRecord]]:
        return self._run(projects.list_files, name, self._parsed)

    def get_file(self, name: str, filename: str) -> Deferred[FileRecord | None]:
        return self._run(projects.get_file, name, filename)

    def get_metadata(self, name: str, filename: str) -> Deferred[bytes | None]:
        return self._run(projects.get_metadata, name, filename)

    def blob_keys(self) -> Deferred[set[str]]:
        return self._run(projects.blob_keys)

    # -- writes ----------------------------------------------------------------

    def add_file(
        self,
        record: FileRecord,
        display_name: str,
        metadata: bytes | None,
        summary: str | None = None,
    ) -> Deferred[bool]:
        d = self._run(projects.add_file, record, display_name, metadata, summary)
        d.addCallback(self._notify_if_changed, record.project)
        d.addCallback(lambda serial: serial is not None)
        return d

    def register(self, name: str, display_name: str, info: dict) -> Deferred[ProjectRecord]:
        d = self._run(projects.register, name, display_name, info)
        d.addCallback(self._notify_registered)
        return d

    def offer_summary(self, name: str, summary: str, version: str | None) -> Deferred[bool]:
        d = self._run(projects.offer_summary, name, summary, version)
        return d.addCallback(self._changed, name)

    # -- yanking and deleting ------------------------------------------------------

    def set_yanked(
        self, name: str, filenames: list[str], reason: str | None
    ) -> Deferred[list[str]]:
        d = self._run(projects.set_yanked, name, list(filenames), reason)
        return d.addCallback(self._changed, name)

    def delete_files(self, name: str, filenames: list[str]) -> Deferred[list[FileRecord]]:
        d = self._run(projects.delete_files, name, list(filenames))
        return d.addCallback(self._changed, name)

    def tombstones(self, name: str) -> Deferred[dict[str, str]]:
        return self._run(projects.tombstones, name)

    def add_tombstone(self, name: str, filename: str, sha256: str) -> Deferred[None]:
        return self._run(projects.add_tombstone, name, filename, sha256)

    def _changed(self, outcome: tuple[int | None, T], name: str) -> T:
        """Announce a change (if there was one) and fire with what the work returned."""
        serial, changed = outcome
        self._notify_if_changed(serial, name)
        return changed

    def set_project_status(
        self, name: str, status: str, reason: str | None
    ) -> Deferred[ProjectRecord | None]:
        if status not in STATUSES:
            return fail(ValueError(f"unknown project status {status!r}"))
        d = self._run(projects.set_status, name, status, reason)
        return d.addCallback(self._changed, name)

    def allow_cooldown(self, exception: CooldownException) -> Deferred[None]:
        d = self._run(cooldown.allow, exception)
        return d.addCallback(self._changed, exception.project)

    def revoke_cooldown(self, name: str, version: str | None) -> Deferred[bool]:
        d = self._run(cooldown.revoke, name, version)
        return d.addCallback(self._changed, name)

    def cooldown_exceptions(self, name: str | None = None) -> Deferred[list[CooldownException]]:
        return self._run(cooldown.listed, name)

    def refresh_upstream(self, name: str) -> Deferred[None]:
        d = self._run(cooldown.refresh, name)
        return d.addCallback(self._changed, name)

    # -- users, tokens and roles ---------------------------------------------------

    def add_user(self, user: UserRecord) -> Deferred[bool]:
        return self._run(accounts.add_user, user)

    def get_user(self, name: str) -> Deferred[UserRecord | None]:
        return self._run(accounts.get_user, name)

    def list_users(self) -> Deferred[list[UserRecord]]:
        return self._run(accounts.list_users)

    def has_users(self) -> Deferred[bool]:
        return self._run(accounts.has_users)

    def set_password(self, name: str, password_hash: str) -> Deferred[bool]:
        return self._run(accounts.set_password, name, password_hash)

    def remove_user(self, name: str) -> Deferred[bool]:
        return self._run(accounts.remove_user, name)

    def add_token(self, token: TokenRecord) -> Deferred[bool]:
        return self._run(accounts.add_token, token)

    def get_token(self, token_id: str) -> Deferred[TokenRecord | None]:
        return self._run(accounts.get_token, token_id)

    def list_tokens(self, username: str | None = None) -> Deferred[list[TokenRecord]]:
        return self._run(accounts.list_tokens, username)

    def revoke_token(self, token_id: str) -> Deferred[bool]:
        return self._run(accounts.revoke_token, token_id)

    def get_roles(self, name: str) -> Deferred[dict[str, str]]:
        return self._run(accounts.get_roles, name)

    def user_roles(self, username: str) -> Deferred[dict[str, str]]:
        return self._run(accounts.user_roles, username)

    def set_role(self, name: str, username: str, role: str | None) -> Deferred[None]:
        if role is not None and role not in ROLES:
            return fail(ValueError(f"unknown role {role!r}"))
        return self._run(accounts.set_role, name, username, role)

    def claim_project(self, name: str, username: str) -> Deferred[dict[str, str]]:
        return self._run(accounts.claim_project, name, username)

    def add_team(self, team: TeamRecord) -> Deferred[bool]:
        return self._run(teams.add_team, team)

    def remove_team(self, name: str) -> Deferred[bool]:
        return self._run(teams.remove_team, name)

    def list_teams(self) -> Deferred[list[TeamRecord]]:
        return self._run(teams.list_teams)

    def set_member(self, name: str, username: str, member: bool) -> Deferred[bool]:
        return self._run(teams.set_member, name, username, member)

    def user_teams(self, username: str) -> Deferred[frozenset[str]]:
        return self._run(teams.user_teams, username)

    # -- the audit log -------------------------------------------------------------

    def append_audit(self, event: AuditEvent) -> Deferred[None]:
        return self._run(audit.append_audit, event)

    def list_audit(
        self, project: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Deferred[list[AuditEvent]]:
        return self._run(audit.list_audit, project, limit)

    # -- change notification -----------------------------------------------------

    def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(name)`` on the reactor thread after each committed change.

        Callbacks run before the change's Deferred fires to its caller, so a
        page cache is dropped before an uploader is told the upload worked.
        """
        self._subscribers.add(callback)

    def _notify_if_changed(self, serial: int | None, name: str) -> int | None:
        """Announce a change made here (``serial`` None: nothing changed)."""
        if serial is not None:
            self._own_serials.add(serial)
            self._subscribers.notify(name)
        return serial

    def _notify_registered(self, project: ProjectRecord) -> ProjectRecord:
        self._own_serials.add(project.serial)
        self._subscribers.notify(project.name)
        return project

    def lease(self, name: str) -> ILease:
        """This process's lease ``name``: the embedded store serves one process."""
        if name not in self._leases:
            # Without a clock given, the lease finds the global reactor when used.
            self._leases[name] = LocalLease(name, self._clock)
        return self._leases[name]

    def cache_index(self) -> ICacheIndex:
        """The index of proxied files, in this process's memory: the embedded store serves one.

        Its pins (mirrored files) are kept beside the database, in
        ``upstream/pinned.txt`` of the data directory, so a restart keeps them.
        """
        if self._cache_index is None:
            pins = os.path.join(os.path.dirname(self.path), "upstream", "pinned.txt")
            self._cache_index = LocalCacheIndex(self.lease(EVICTION_LEASE), pins)
        return self._cache_index


def _stop_pool_then(result: T, pool: ThreadPool) -> T:
    pool.stop()
    return result

"""The shared metadata store: Redis, for several processes or hosts.

Every process of one index points at the same Redis (``--redis URL``) and
the same blob storage; whatever must be coordinated between them (file
claims, serials, page-cache invalidation) is decided by Redis, never by a
process alone.

Each change is one Lua script (:mod:`~ministry.stores.redis.scripts`, where
the key layout and the atomicity they give are described); subscribers hear
of changes through :mod:`~ministry.stores.redis.changes`.

Availability. txredisapi's lazy pool lets the daemon start while Redis is
down, but it then queues calls forever; every call here has ``timeout`` and
fails with :class:`StoreUnavailable` (HTTP 503) after it. A connection silent
past the timeout is dropped as dead (a hung or half-open one is replaced,
not waited on); both reconnect by themselves when Redis comes back.

txredisapi is imported inside functions only: importing it installs the
default reactor, which must stay twistd's (or the tests') choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred, fail, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ministry.core.errors import StoreUnavailable
from ministry.core.models import (
    ROLES,
    FileRecord,
    ProjectRecord,
    TokenRecord,
    UserRecord,
    format_time,
    utcnow,
)
from ministry.core.redis_url import parse_redis_url
from ministry.interfaces import ILease, IMetadataStore
from ministry.interfaces.cache_index import ICacheIndex
from ministry.stores.redis import scripts
from ministry.stores.redis.audit import AuditLog
from ministry.stores.redis.cache_index import RedisCacheIndex
from ministry.stores.redis.changes import ChangeFeed, new_change_id
from ministry.stores.redis.connection import InFlight, connections, listener_protocol
from ministry.stores.redis.cooldown import CooldownExceptions
from ministry.stores.redis.lease import RedisLease
from ministry.stores.redis.project_status import ProjectStatusWrites
from ministry.stores.redis.records import (
    PROJECT_FIELDS,
    file_record,
    project_record,
    project_records,
    text_pairs,
    to_json,
    token_record,
    tokens_of,
    user_record,
)
from ministry.stores.redis.releases import ReleaseWrites
from ministry.stores.redis.teams import Teams
from ministry.stores.redis.tombstones import Tombstones

log = Logger()

UNAVAILABLE = "Metadata store (Redis) unavailable"

#: Projects whose records one FILE_RECORDS call returns: a bounded reply and
#: a short script, so that reading a large index never stalls Redis for others.
FILE_RECORDS_BATCH = 100


@implementer(IMetadataStore)
class RedisStore(
    AuditLog, CooldownExceptions, ProjectStatusWrites, ReleaseWrites, Teams, Tombstones, Service
):
    """:class:`IMetadataStore` on Redis, shared by any number of processes."""

    def __init__(
        self,
        url: str,
        prefix: str = "ministry:",
        timeout: float = 5.0,
        clock: IReactorTime | None = None,
    ) -> None:
        """Settings only: connections open in startService, not at wiring time.

        ``clock`` times the calls' timeouts: a ``task.Clock`` in tests, by
        default the global reactor found at start (which also connects).
        """
        if timeout <= 0:
            raise ValueError(f"the Redis timeout must be positive, not {timeout!r}")
        self.address = parse_redis_url(url)
        self.prefix = prefix
        self.timeout = timeout
        self._clock = clock
        self._pool: Any = None  # txredisapi factory of the connection for commands
        self._listener: Any = None  # txredisapi factory of the pub/sub connection
        self._switches: list[Any] = []  # txredisapi factories listening to the sentinels
        self._connection_error: str | None = None
        self._in_flight = InFlight()
        self._changes = ChangeFeed(self._key, self._script, self.address, lambda: self.running)

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # -- service ---------------------------------------------------------------

    def startService(self) -> None:
        """Start connecting, without waiting: the daemon starts while Redis is down."""
        from twisted.internet import reactor  # the reactor twistd installed

        super().startService()
        self._clock = self._clock or reactor
        self._connection_error = None
        self._changes.restart()
        protocol = listener_protocol(self._changes.listen, self._changes.heard)
        opened = connections(reactor, self.address, self.timeout, protocol, self._refused)
        self._pool, self._listener, self._switches = opened

    def stopService(self) -> Deferred[None]:
        """Let the calls already made finish (each within the timeout), then disconnect."""
        super().stopService()
        factories = [f for f in (self._pool, self._listener, *self._switches) if f is not None]
        self._pool, self._listener, self._switches = None, None, []
        d = self._in_flight.when_idle()
        d.addCallback(lambda _: gatherResults([f.disconnect() for f in factories]))
        d.addCallback(lambda _: None)
        return d

    def _refused(self, failure: Failure) -> None:
        self._connection_error = failure.getErrorMessage()
        log.error(
            "{address} refused the metadata store: {why}",
            address=self.address,
            why=self._connection_error,
        )

    # -- calling Redis with a timeout --------------------------------------------

    def _call(self, method: str, *args: Any) -> Deferred[Any]:
        """Call a txredisapi method; fails with StoreUnavailable, never hangs."""
        if self._pool is None:
            return fail(StoreUnavailable(f"{UNAVAILABLE}: the store is not running."))
        d = defer.maybeDeferred(getattr(self._pool.handler, method), *args)
        d.addTimeout(self.timeout, self._clock)
        # The connection this call may be sent on: if the call times out, it
        # is presumed dead. One made while the call waited is not suspect.
        d.addErrback(self._unavailable, list(self._pool.pool))
        return self._in_flight.track(d)

    def _command(self, *args: Any) -> Deferred[Any]:
        return self._call("execute_command", *args)

    def _script(self, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]:
        return scripts.run_script(self._call, script, keys, args)

    def _unavailable(self, failure: Failure, connections: list[Any]) -> Failure:
        import txredisapi

        if failure.check(defer.TimeoutError):
            # Dropped so that the next call gets a fresh connection rather
            # than wait behind a hung or half-open one.
            for connection in connections:
                connection.transport.abortConnection()
            reason = f"no reply from {self.address} within {self.timeout:g} s"
        elif failure.check(txredisapi.RedisError):
            reason = failure.getErrorMessage()
        else:
            return failure
        if self._connection_error:
            reason += f" ({self._connection_error})"
        raise StoreUnavailable(f"{UNAVAILABLE}: {reason}.")

    def is_available(self) -> Deferred[bool]:
        """Whether Redis answers a PING within the timeout, for ``/health``."""
        d = self._command("PING")
        d.addCallbacks(lambda _: True, _false_if_unavailable)
        return d

    # -- reads -----------------------------------------------------------------

    def last_serial(self) -> Deferred[int]:
        d = self._command("GET", self._key("serial"))
        return d.addCallback(lambda serial: int(serial or 0))

    def list_projects(self) -> Deferred[list[ProjectRecord]]:
        d = self._script(scripts.LIST_PROJECTS, [self._key("projects")], [self._key("project:")])
        return d.addCallback(project_records)

    def get_project(self, name: str) -> Deferred[ProjectRecord | None]:
        d = self._command("HMGET", self._key("project", name), *PROJECT_FIELDS)
        return d.addCallback(lambda fields: project_record(name, fields))

    def list_files(self, name: str) -> Deferred[list[FileRecord]]:
        d = self._script(
            scripts.LIST_FILES, [self._key("order", name), self._key("files", name)], []
        )
        d.addCallback(lambda records: [file_record(record) for record in records])
        return d

    def get_file(self, name: str, filename: str) -> Deferred[FileRecord | None]:
        d = self._command("HGET", self._key("files", name), filename)
        return d.addCallback(lambda record: None if record is None else file_record(record))

    def get_metadata(self, name: str, filename: str) -> Deferred[bytes | None]:
        return self._command("HGET", self._key("metadata", name), filename)

    def blob_keys(self) -> Deferred[set[str]]:
        return defer.ensureDeferred(self._blob_keys())

    async def _blob_keys(self) -> set[str]:
        """The projects, then their records, ``FILE_RECORDS_BATCH`` projects a call."""
        names = await self._command("ZRANGE", self._key("projects"), 0, -1)
        keys: set[str] = set()
        for start in range(0, len(names), FILE_RECORDS_BATCH):
            batch = names[start : start + FILE_RECORDS_BATCH]
            files = [self._key("files", name.decode()) for name in batch]
            records = await self._script(scripts.FILE_RECORDS, files, [])
            keys.update(key for record in records for key in file_record(record).stored_keys)
        return keys

    # -- writes ----------------------------------------------------------------

    def _change_keys(self, name: str) -> list[str]:
        return [self._key("serial"), self._key("projects"), self._key("project", name)]

    def _change_args(self, name: str, display_name: str, change: str) -> list[str]:
        return [name, display_name, format_time(utcnow()), change, self._key("changes")]

    # -- change notification and leases ------------------------------------------

    def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(name)`` on the reactor thread after each change, by any process.

        A change made through this store is announced before its Deferred
        fires to the caller; one made elsewhere, when its message arrives.
        """
        self._changes.subscribers.add(callback)

    def lease(self, name: str) -> ILease:
        """The lease ``name``, held by one process of all those on this Redis."""
        return RedisLease(self._key("lease", name), self._command, self._script)

    def cache_index(self) -> ICacheIndex:
        """The index of proxied files and its eviction lease, shared by every process here."""
        return RedisCacheIndex(self._key, self._command, self._script)

    # -- yanking and deleting: changes like add_file (serial bumped, PUBLISHed) -----

    def set_yanked(
        self, name: str, filenames: list[str], reason: str | None
    ) -> Deferred[list[str]]:
        change = new_change_id()
        keys = [*self._change_keys(name), self._key("files", name)]
        args = [
            *self._change_args(name, name, change),
            "0" if reason is None else "1",
            reason or "",
            *filenames,
        ]
        d = self._script(scripts.SET_YANKED, keys, args)
        d.addCallback(self._changed_files, name, change)
        d.addCallback(lambda changed: [filename.decode() for filename in changed])
        return d

    def delete_files(self, name: str, filenames: list[str]) -> Deferred[list[FileRecord]]:
        change = new_change_id()
        keys = [
            *self._change_keys(name),
            self._key("files", name),
            self._key("order", name),
            self._key("metadata", name),
            self._key("tombstones", name),
        ]
        args = [*self._change_args(name, name, change), *filenames]
        d = self._script(scripts.DELETE_FILES, keys, args)
        d.addCallback(self._changed_files, name, change)
        d.addCallback(lambda removed: [file_record(record) for record in removed])
        return d

    def _changed_files(self, changed: list[bytes], name: str, change: str) -> list[bytes]:
        if changed:
            self._changes.announce(change, name)
        return changed

    # -- users, tokens and roles: not part of the index, they bump nothing ------------

    def add_user(self, user: UserRecord) -> Deferred[bool]:
        d = self._command("HSETNX", self._key("users"), user.name, to_json(user))
        return d.addCallback(lambda added: int(added) == 1)

    def get_user(self, name: str) -> Deferred[UserRecord | None]:
        d = self._command("HGET", self._key("users"), name)
        return d.addCallback(lambda user: None if user is None else user_record(user))

    def list_users(self) -> Deferred[list[UserRecord]]:
        d = self._command("HVALS", self._key("users"))
        return d.addCallback(lambda users: sorted(map(user_record, users), key=lambda u: u.name))

    def has_users(self) -> Deferred[bool]:
        return self._command("HLEN", self._key("users")).addCallback(bool)

    def set_password(self, name: str, password_hash: str) -> Deferred[bool]:
        d = self._script(scripts.SET_PASSWORD, [self._key("users")], [name, password_hash])
        return d.addCallback(lambda changed: int(changed) == 1)

    def remove_user(self, name: str) -> Deferred[bool]:
        keys = [self._key("users"), self._key("tokens"), self._key("user-roles", name)]
        keys.append(self._key("user-teams", name))
        d = self._script(scripts.REMOVE_USER, keys, [name, self._key("roles:"), self._key("team:")])
        return d.addCallback(lambda removed: int(removed) == 1)

    def add_token(self, token: TokenRecord) -> Deferred[bool]:
        keys = [self._key("users"), self._key("tokens")]
        d = self._script(scripts.ADD_TOKEN, keys, [token.username, token.id, to_json(token)])
        return d.addCallback(lambda added: int(added) == 1)

    def get_token(self, token_id: str) -> Deferred[TokenRecord | None]:
        d = self._command("HGET", self._key("tokens"), token_id)
        return d.addCallback(lambda token: None if token is None else token_record(token))

    def list_tokens(self, username: str | None = None) -> Deferred[list[TokenRecord]]:
        d = self._command("HVALS", self._key("tokens"))
        return d.addCallback(tokens_of, username)

    def revoke_token(self, token_id: str) -> Deferred[bool]:
        d = self._command("HDEL", self._key("tokens"), token_id)
        return d.addCallback(lambda removed: int(removed) == 1)

    def get_roles(self, name: str) -> Deferred[dict[str, str]]:
        return self._command("HGETALL", self._key("roles", name)).addCallback(text_pairs)

    def user_roles(self, username: str) -> Deferred[dict[str, str]]:
        d = self._command("HGETALL", self._key("user-roles", username))
        return d.addCallback(text_pairs)

    def set_role(self, name: str, username: str, role: str | None) -> Deferred[None]:
        if role is not None and role not in ROLES:
            return fail(ValueError(f"unknown role {role!r}"))
        keys = [self._key("roles", name), self._key("user-roles", username)]
        d = self._script(scripts.SET_ROLE, keys, [name, username, role or ""])
        return d.addCallback(lambda _: None)

    def claim_project(self, name: str, username: str) -> Deferred[dict[str, str]]:
        keys = [self._key("roles", name), self._key("user-roles", username)]
        return self._script(scripts.CLAIM_PROJECT, keys, [name, username]).addCallback(text_pairs)


def _false_if_unavailable(failure: Failure) -> bool:
    failure.trap(StoreUnavailable)
    return False

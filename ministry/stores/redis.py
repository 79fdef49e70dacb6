"""The shared metadata store: Redis, for several processes or hosts.

Every process of one index points at the same Redis (``--redis URL``) and
the same blob storage; whatever must be coordinated between them (file
claims, serials, page-cache invalidation) is decided by Redis, never by a
process alone.

Key layout, everything under ``prefix`` (``{p}``) so that several indexes can
share one Redis; prefixes must not be prefixes of one another::

    {p}serial              string  the global serial (INCR); absent means 0
    {p}projects            zset    canonical name -> serial of its last change
    {p}project:{name}      hash    display_name, created (format_time),
                                   info (JSON: field -> values), serial,
                                   change (random id of its last change)
    {p}files:{name}        hash    filename -> JSON of FileRecord.to_dict()
    {p}order:{name}        list    filenames in upload order (RPUSH)
    {p}metadata:{name}     hash    filename -> core metadata bytes (no field: None)
    {p}tombstones:{name}   hash    filename -> sha256 of a deleted file (never reused)
    {p}sdists:{name}       hash    release (names.release_version) -> its sdist's
                                   filename; an entry whose file was deleted is
                                   stale, ignored and replaced by the next sdist
    {p}changes             pub/sub channel: "<serial> <change> <name>"
    {p}users               hash    user name -> JSON of UserRecord.to_dict()
    {p}tokens              hash    token id -> JSON of TokenRecord.to_dict()
    {p}roles:{name}        hash    user name -> role in the project
    {p}user-roles:{user}   hash    project name -> role (the same roles, by user)

Records are the same JSON documents the SQLite store keeps, so both stores
agree on every field by construction. The ``projects`` zset both lists the
projects and answers "what changed after serial N" (see catching up below).

Atomicity. Each change is one Lua script (EVAL, then EVALSHA once Redis has
it), and Redis runs a script with nothing interleaved, whichever process
sent it. ``add_file`` checks the filename (same sha256: no-op; other bytes:
conflict) and, for an sdist, that its release has no other one, then
stores the record and metadata, creates the project if needed, INCRs the
serial, records it as the project's serial and PUBLISHes the change, all
in one step; ``register`` does the same for the project info. So a
filename (and a release's sdist) is claimed by exactly one process, and
serials never repeat or go backwards -- as long as Redis keeps its data:
run it with ``appendonly yes``, because a Redis that restarts from an older
snapshot (or empty) hands out the lost serials again. Redis Cluster is not
supported (the scripts touch keys of several projects).

Notifications. ``subscribe`` callbacks must hear of changes made by any
process, so a second connection listens on ``{p}changes`` (pub/sub is global
in Redis, not per database: the prefix is part of the channel). Changes made
through this store are also announced directly, before the change's Deferred
fires to its caller, as the SQLite store does. Each change carries a
random id, made by the writer, and is announced once whichever way reaches
this process first: the write's reply, its pub/sub echo, or catching up. A
late duplicate is possible (the memory of ids is bounded) and harmless,
because invalidating a cache is idempotent. Ids rather than serials, so that
a Redis that lost data and hands out a serial again is not mistaken for an
echo.

Catching up. Pub/sub delivers only to connected listeners, and page caches
have no expiry, so a message missed while the listener was reconnecting
would leave a stale page forever. Each (re)subscription therefore asks the
``projects`` zset for every project changed after the last serial known to
have been heard without a gap, and announces those. The first subscription
starts from 0, which covers reads served before the listener connected; a
global serial below the one last heard means Redis lost data, and is logged
and answered by announcing every project.

Availability. txredisapi's lazy pool lets the daemon start while Redis is
down, but it then queues calls forever; every call here has ``timeout`` and
fails with :class:`StoreUnavailable` (HTTP 503) after it. A connection that
does not answer within the timeout is presumed dead and dropped, so a hung
or half-open connection is replaced rather than waited on. Both connections
reconnect by themselves when Redis comes back.

txredisapi is imported inside functions only: importing it installs the
default reactor, which must stay twistd's (or the tests') choice.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ministry.core.errors import FileExists, FilenameReused, SdistExists, StoreUnavailable
from ministry.core.models import (
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

UNAVAILABLE = "Metadata store (Redis) unavailable"

#: txredisapi backs off up to 10 s between attempts by default; a refused
#: connection costs nothing, and an index should be back soon after Redis is.
RECONNECT_MAX_DELAY = 2.0

#: How many recent change ids are remembered as announced, so that one
#: change arriving by two paths is announced once; older ones are forgotten
#: (at worst a late echo is announced twice, which is harmless).
ANNOUNCED_MEMORY = 10_000

#: Kernel keepalive for the listener, which only ever receives: without it, a
#: Redis host that vanished would leave it waiting forever on a dead socket
#: and every later change unheard (seconds: idle, between probes; probes).
LISTENER_KEEPALIVE = (10, 5, 3)

#: The project hash fields, in the order every reply below lists them.
PROJECT_FIELDS = ("display_name", "created", "info", "serial")


# -- addresses -------------------------------------------------------------------


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis listens and how to log in: a TCP host and port, or a socket path."""

    host: str | None = None
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def __str__(self) -> str:
        """The address for messages and logs: never the password."""
        if self.path is not None:
            return f"unix://{self.path}?db={self.db}"
        scheme = "rediss" if self.tls else "redis"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """Parse ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS)
    or ``unix://[[user]:password@]/path/redis.sock[?db=N]``.

    Strict on purpose: a typo in the URL should stop the daemon at start-up
    with a message, not connect somewhere unexpected. Raises ``ValueError``.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"expected a redis://, rediss:// or unix:// URL, not {url!r}")
    if parts.fragment:
        raise ValueError(f"unexpected #fragment in Redis URL {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in Redis URL {url!r}") from None
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    credentials = {
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    if parts.scheme == "unix":
        if parts.hostname or port is not None or not parts.path:
            raise ValueError(f"expected unix:///path/to/redis.sock, not {url!r}")
        db = query.pop("db", ["0"])
        _refuse_options(query, url)
        return RedisAddress(path=unquote(parts.path), db=_db(db[-1], url), **credentials)
    _refuse_options(query, url)
    if not parts.hostname:
        raise ValueError(f"no host in Redis URL {url!r}")
    return RedisAddress(
        host=parts.hostname,
        port=6379 if port is None else port,
        db=_db(parts.path.strip("/") or "0", url),
        tls=parts.scheme == "rediss",
        **credentials,
    )


def _db(text: str, url: str) -> int:
    if not text.isdigit():
        raise ValueError(f"expected a database number in Redis URL {url!r}, not {text!r}")
    return int(text)


def _refuse_options(query: dict[str, list[str]], url: str) -> None:
    if query:
        raise ValueError(f"unsupported option(s) {', '.join(sorted(query))} in {url!r}")


# -- connecting ------------------------------------------------------------------


def _endpoint(reactor: Any, address: RedisAddress, timeout: float) -> IStreamClientEndpoint:
    if address.path is not None:
        return UNIXClientEndpoint(reactor, address.path, timeout=timeout)
    endpoint = HostnameEndpoint(reactor, address.host, address.port, timeout=timeout)
    if not address.tls:
        return endpoint
    # txredisapi's own TLS option does not check the certificate; this does.
    from twisted.internet.ssl import optionsForClientTLS

    return wrapClientTLS(optionsForClientTLS(address.host), endpoint)


def _connect(
    reactor: Any, address: RedisAddress, timeout: float, protocol: type | None = None
) -> Any:
    """Start a lazy txredisapi pool of one connection; returns its factory.

    Built by hand rather than with ``lazyConnectionPool`` to choose the
    endpoint (verified TLS), the reconnection delay and the protocol.
    ``charset=None`` and ``convertNumbers=False`` make every reply bytes, as
    Redis sent them: otherwise valid UTF-8 would come back as ``str``, the
    rest as ``bytes``, and metadata reading ``123`` as an ``int``. One
    connection keeps this process's commands in the order it sent them, so
    a reply is never overtaken by the reply to a later command.
    """
    import txredisapi

    factory = txredisapi.RedisFactory(
        str(address),
        address.db,
        1,
        isLazy=True,
        charset=None,
        password=address.password,
        convertNumbers=False,
        username=address.username,
    )
    factory.maxDelay = RECONNECT_MAX_DELAY
    if protocol is not None:
        factory.protocol = protocol
    factory.startConnecting(_endpoint(reactor, address, timeout))
    return factory


def _listener_protocol(
    on_ready: Callable[[Any], object], on_message: Callable[[bytes], None]
) -> type:
    """A subscriber protocol that reports each usable connection and each message.

    A class built on demand, because its base class comes from txredisapi.
    """
    import txredisapi

    class ChangeListener(txredisapi.SubscriberProtocol):
        def connectionMade(self) -> Any:
            # whenConnected fires once AUTH and SELECT have succeeded, not before.
            self.whenConnected().addCallback(on_ready)
            _keep_alive(self.transport)
            return super().connectionMade()

        def messageReceived(self, pattern: Any, channel: bytes, message: bytes) -> None:
            on_message(message)

    return ChangeListener


def _keep_alive(transport: Any) -> None:
    handle = transport.getHandle()
    if not isinstance(handle, socket.socket) or handle.family == socket.AF_UNIX:
        return
    idle, interval, count = LISTENER_KEEPALIVE
    handle.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", idle),
        ("TCP_KEEPINTVL", interval),
        ("TCP_KEEPCNT", count),
    ):
        if hasattr(socket, option):  # Linux names; other systems keep their defaults
            handle.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


# -- scripts ---------------------------------------------------------------------

# Shared by the writing scripts. KEYS[1..3]: serial, projects, project hash;
# ARGV[1..5]: canonical name, display name, creation time, change id,
# channel. The first display name and creation time stay; the serial is
# formatted by string.format so that it is never written as 1e+14.
_CHANGE = """
local function change()
  local serial = string.format('%d', redis.call('INCR', KEYS[1]))
  if redis.call('EXISTS', KEYS[3]) == 0 then
    redis.call('HSET', KEYS[3], 'display_name', ARGV[2], 'created', ARGV[3], 'info', '{}')
  end
  redis.call('HSET', KEYS[3], 'serial', serial, 'change', ARGV[4])
  redis.call('ZADD', KEYS[2], serial, ARGV[1])
  return serial
end
local function announce(serial)
  redis.call('PUBLISH', ARGV[5], serial .. ' ' .. ARGV[4] .. ' ' .. ARGV[1])
end
"""

# KEYS[4..8]: files, order, metadata, tombstones, sdists; ARGV[6..11]:
# filename, sha256, record JSON, '1' if there is metadata, metadata bytes,
# the release of an sdist ('' for a wheel): one sdist per release.
ADD_FILE = (
    _CHANGE
    + """
if redis.call('HEXISTS', KEYS[7], ARGV[6]) == 1 then return {'reused'} end
local taken = redis.call('HGET', KEYS[4], ARGV[6])
if taken then
  local sha256 = cjson.decode(taken).sha256
  if sha256 == ARGV[7] then return {'exists'} end
  return {'conflict', sha256}
end
if ARGV[11] ~= '' then
  local sdist = redis.call('HGET', KEYS[8], ARGV[11])
  if sdist and redis.call('HEXISTS', KEYS[4], sdist) == 1 then return {'sdist', sdist} end
  redis.call('HSET', KEYS[8], ARGV[11], ARGV[6])
end
local serial = change()
redis.call('HSET', KEYS[4], ARGV[6], ARGV[8])
redis.call('RPUSH', KEYS[5], ARGV[6])
if ARGV[9] == '1' then redis.call('HSET', KEYS[6], ARGV[6], ARGV[10]) end
announce(serial)
return {'added', serial}
"""
)

# ARGV[6]: the info JSON, which replaces the previous info.
REGISTER = (
    _CHANGE
    + """
local serial = change()
redis.call('HSET', KEYS[3], 'info', ARGV[6])
announce(serial)
return redis.call('HMGET', KEYS[3], 'display_name', 'created', 'info', 'serial')
"""
)

# The global serial, and the name and last change id of every project
# changed after a serial. KEYS[1..2]: serial, projects; ARGV[1]: the serial;
# ARGV[2]: the project hash key prefix.
CHANGED_SINCE = """
local changed = {}
for i, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')) do
  changed[i] = {name, redis.call('HGET', ARGV[2] .. name, 'change')}
end
return {redis.call('GET', KEYS[1]) or '0', changed}
"""

# Read scripts, for a consistent snapshot in one round trip.
# KEYS[1]: projects; ARGV[1]: the project hash key prefix.
LIST_PROJECTS = """
local projects = {}
for i, name in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fields = redis.call('HMGET', ARGV[1] .. name, 'display_name', 'created', 'info', 'serial')
  projects[i] = {name, fields[1], fields[2], fields[3], fields[4]}
end
return projects
"""

# KEYS[1..2]: order, files.
LIST_FILES = """
local records = {}
for i, filename in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  records[i] = redis.call('HGET', KEYS[2], filename)
end
return records
"""


# KEYS: files hashes of several projects. Every record in them, in no order.
FILE_RECORDS = """
local records = {}
for _, key in ipairs(KEYS) do
  for _, record in ipairs(redis.call('HVALS', key)) do records[#records + 1] = record end
end
return records
"""

#: Projects whose records one FILE_RECORDS call returns: a bounded reply and
#: a short script, so that reading a large index never stalls Redis for others.
FILE_RECORDS_BATCH = 100


# -- the store -------------------------------------------------------------------


@implementer(IMetadataStore)
class RedisStore(Service):
    """:class:`IMetadataStore` on Redis, shared by any number of processes."""

    def __init__(self, url: str, prefix: str = "ministry:", timeout: float = 5.0) -> None:
        # Settings only: connections open in startService, not at wiring time.
        if timeout <= 0:
            raise ValueError(f"the Redis timeout must be positive, not {timeout!r}")
        self.address = parse_redis_url(url)
        self.prefix = prefix
        self.timeout = timeout
        self._reactor: IReactorTime | None = None
        self._pool: Any = None  # txredisapi factory of the connection for commands
        self._listener: Any = None  # txredisapi factory of the pub/sub connection
        self._connection_error: str | None = None
        self._in_flight: set[Deferred] = set()
        self._idle_waiters: list[Deferred] = []
        self._subscribers: list[Callable[[str], None]] = []
        self._announced: dict[str, None] = {}  # insertion-ordered set of change ids
        self._heard_up_to = 0  # every change up to this serial has been announced
        self._in_sync = False  # whether messages now arrive with no gap before them

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # -- service ---------------------------------------------------------------

    def startService(self) -> None:
        """Start connecting, without waiting: the daemon starts while Redis is down."""
        from twisted.internet import reactor  # the reactor twistd installed

        super().startService()
        self._reactor = reactor
        self._connection_error = None
        self._heard_up_to, self._in_sync = 0, False
        self._pool = _connect(reactor, self.address, self.timeout)
        protocol = _listener_protocol(self._listen, self._heard)
        self._listener = _connect(reactor, self.address, self.timeout, protocol)
        for factory in (self._pool, self._listener):
            # Fails only when Redis refuses us (AUTH, SELECT): remember why.
            factory.deferred.addErrback(self._refused)

    def stopService(self) -> Deferred[None]:
        """Let the calls already made finish (each within the timeout), then disconnect."""
        super().stopService()
        factories = [f for f in (self._pool, self._listener) if f is not None]
        self._pool = self._listener = None
        d = self._when_idle()
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
        d.addTimeout(self.timeout, self._reactor)
        # The connection this call may be sent on: if the call times out, it
        # is presumed dead. One made while the call waited is not suspect.
        d.addErrback(self._unavailable, list(self._pool.pool))
        self._in_flight.add(d)
        d.addBoth(self._settled, d)
        return d

    def _command(self, *args: Any) -> Deferred[Any]:
        return self._call("execute_command", *args)

    def _script(self, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]:
        return self._call("eval", script, keys, args)

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

    def _settled(self, result: Any, d: Deferred) -> Any:
        self._in_flight.discard(d)
        if not self._in_flight:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)
        return result

    def _when_idle(self) -> Deferred[None]:
        if not self._in_flight:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def is_available(self) -> Deferred[bool]:
        """Whether Redis answers a PING within the timeout, for ``/health``."""
        d = self._command("PING")
        d.addCallbacks(lambda _: True, _false_if_unavailable)
        return d

    # -- reads -----------------------------------------------------------------

    def last_serial(self) -> Deferred[int]:
        d = self._command("GET", self._key("serial"))
        d.addCallback(lambda serial: int(serial or 0))
        return d

    def list_projects(self) -> Deferred[list[ProjectRecord]]:
        d = self._script(LIST_PROJECTS, [self._key("projects")], [self._key("project:")])
        d.addCallback(_projects)
        return d

    def get_project(self, name: str) -> Deferred[ProjectRecord | None]:
        d = self._command("HMGET", self._key("project", name), *PROJECT_FIELDS)
        d.addCallback(lambda fields: _project(name, fields))
        return d

    def list_files(self, name: str) -> Deferred[list[FileRecord]]:
        d = self._script(LIST_FILES, [self._key("order", name), self._key("files", name)], [])
        d.addCallback(lambda records: [_file(record) for record in records])
        return d

    def get_file(self, name: str, filename: str) -> Deferred[FileRecord | None]:
        d = self._command("HGET", self._key("files", name), filename)
        d.addCallback(lambda record: None if record is None else _file(record))
        return d

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
            records = await self._script(FILE_RECORDS, files, [])
            keys.update(_file(record).blob_key for record in records)
        return keys

    # -- writes ----------------------------------------------------------------

    def _change_keys(self, name: str) -> list[str]:
        return [self._key("serial"), self._key("projects"), self._key("project", name)]

    def _change_args(self, name: str, display_name: str, change: str) -> list[str]:
        return [name, display_name, format_time(utcnow()), change, self._key("changes")]

    def add_file(
        self, record: FileRecord, display_name: str, metadata: bytes | None
    ) -> Deferred[bool]:
        name, change = record.project, _new_change_id()
        keys = [
            *self._change_keys(name),
            self._key("files", name),
            self._key("order", name),
            self._key("metadata", name),
            self._key("tombstones", name),
            self._key("sdists", name),
        ]
        args = [
            *self._change_args(name, display_name, change),
            record.filename,
            record.sha256,
            json.dumps(record.to_dict(), sort_keys=True),
            "0" if metadata is None else "1",
            b"" if metadata is None else metadata,
            release_version(record.version) if record.packagetype == SDIST else "",
        ]
        d = self._script(ADD_FILE, keys, args)
        d.addCallback(self._file_claimed, record, change)
        return d

    def _file_claimed(self, reply: list[bytes], record: FileRecord, change: str) -> bool:
        outcome = reply[0]
        if outcome == b"exists":
            return False
        if outcome == b"reused":
            raise FilenameReused(record.filename, record.project)
        if outcome == b"sdist":
            raise SdistExists(record.filename, record.project, record.version, reply[1].decode())
        if outcome == b"conflict":
            raise FileExists(
                f"File already exists: {record.filename} was already uploaded to "
                f"{record.project} with other contents (sha256 {reply[1].decode()}). A "
                "filename always means the same bytes: upload under a new version."
            )
        self._announce(change, record.project)
        return True

    def register(self, name: str, display_name: str, info: dict) -> Deferred[ProjectRecord]:
        change = _new_change_id()
        args = [*self._change_args(name, display_name, change), json.dumps(info, sort_keys=True)]
        d = self._script(REGISTER, self._change_keys(name), args)
        d.addCallback(self._registered, name, change)
        return d

    def _registered(self, fields: list[bytes], name: str, change: str) -> ProjectRecord:
        self._announce(change, name)
        return _project(name, fields)

    # -- change notification -----------------------------------------------------

    def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(name)`` on the reactor thread after each change, by any process.

        A change made through this store is announced before its Deferred
        fires to the caller; one made elsewhere, when its message arrives.
        """
        self._subscribers.append(callback)

    def _announce(self, change: str, name: str) -> None:
        """Tell the subscribers that ``name`` changed, unless this change was told already."""
        if change in self._announced:
            return
        self._announced[change] = None
        if len(self._announced) > ANNOUNCED_MEMORY:
            del self._announced[next(iter(self._announced))]
        # A broken subscriber must not turn a committed change into an error.
        for callback in list(self._subscribers):
            try:
                callback(name)
            except Exception:
                log.failure(
                    "Store subscriber {callback!r} failed for {name}", callback=callback, name=name
                )

    def _heard(self, message: bytes) -> None:
        """A change announced on the channel, by this process or another."""
        try:
            text, change, name = message.decode().split(" ", 2)
            serial = int(text)
        except ValueError:  # not ours: someone else publishing on the channel
            log.warn("Ignored a malformed change message: {message!r}", message=message)
            return
        self._announce(change, name)
        if self._in_sync:
            self._heard_up_to = max(self._heard_up_to, serial)

    def _listen(self, listener: Any) -> None:
        """A listener connection is ready: subscribe, then catch up on what it missed."""
        d = listener.subscribe(self._key("changes"))
        # Runs as SUBSCRIBE is confirmed, before any message behind it.
        d.addCallback(lambda _: self._catch_up(self._heard_up_to))
        d.addErrback(self._listening_failed, listener)

    def _catch_up(self, since: int) -> Deferred[None]:
        """Announce what changed after serial ``since``; messages are heard again meanwhile."""
        self._in_sync = False
        keys = [self._key("serial"), self._key("projects")]
        d = self._script(CHANGED_SINCE, keys, [since, self._key("project:")])
        d.addCallback(self._caught_up, since)
        return d

    def _caught_up(self, reply: list[Any], since: int) -> Deferred[None] | None:
        serial = int(reply[0])
        if serial < since:
            log.error(
                "The global serial in {address} went back from {since} to {serial}: Redis lost "
                "data. Every project is announced as changed; uploads since its last save are "
                "gone (run Redis with appendonly yes).",
                address=self.address,
                since=since,
                serial=serial,
            )
            self._heard_up_to = 0
            return self._catch_up(0)
        for name, change in reply[1]:
            self._announce(change.decode(), name.decode())
        self._heard_up_to = max(self._heard_up_to, serial)
        self._in_sync = True
        return None

    def _listening_failed(self, failure: Failure, listener: Any) -> None:
        if not self.running:
            return  # stopping: the listener is being closed anyway
        if failure.check(StoreUnavailable):
            log.warn("Could not catch up on changes, listening again: {why}", why=failure.value)
        else:
            log.failure("Could not catch up on changes, listening again", failure)
        listener.transport.loseConnection()  # its reconnection tries again

    # == Yanking, deleting, users, tokens and roles (issue 4) =======================
    #
    # Scripts and helpers for this section are at the end of the module. Yank
    # and delete are changes like add_file: one script, serial bumped and
    # PUBLISHed. Users, tokens and roles are not part of the index and bump
    # nothing.

    def set_yanked(
        self, name: str, filenames: list[str], reason: str | None
    ) -> Deferred[list[str]]:
        change = _new_change_id()
        keys = [*self._change_keys(name), self._key("files", name)]
        args = [
            *self._change_args(name, name, change),
            "0" if reason is None else "1",
            reason or "",
            *filenames,
        ]
        d = self._script(SET_YANKED, keys, args)
        d.addCallback(self._changed_files, name, change)
        d.addCallback(lambda changed: [filename.decode() for filename in changed])
        return d

    def delete_files(self, name: str, filenames: list[str]) -> Deferred[list[FileRecord]]:
        change = _new_change_id()
        keys = [
            *self._change_keys(name),
            self._key("files", name),
            self._key("order", name),
            self._key("metadata", name),
            self._key("tombstones", name),
        ]
        args = [*self._change_args(name, name, change), *filenames]
        d = self._script(DELETE_FILES, keys, args)
        d.addCallback(self._changed_files, name, change)
        d.addCallback(lambda removed: [_file(record) for record in removed])
        return d

    def _changed_files(self, changed: list[bytes], name: str, change: str) -> list[bytes]:
        if changed:
            self._announce(change, name)
        return changed

    def add_user(self, user: UserRecord) -> Deferred[bool]:
        d = self._command("HSETNX", self._key("users"), user.name, _json(user))
        return d.addCallback(lambda added: int(added) == 1)

    def get_user(self, name: str) -> Deferred[UserRecord | None]:
        d = self._command("HGET", self._key("users"), name)
        return d.addCallback(lambda user: None if user is None else _user(user))

    def list_users(self) -> Deferred[list[UserRecord]]:
        d = self._command("HVALS", self._key("users"))
        return d.addCallback(lambda users: sorted(map(_user, users), key=lambda u: u.name))

    def set_password(self, name: str, password_hash: str) -> Deferred[bool]:
        d = self._script(SET_PASSWORD, [self._key("users")], [name, password_hash])
        return d.addCallback(lambda changed: int(changed) == 1)

    def remove_user(self, name: str) -> Deferred[bool]:
        keys = [self._key("users"), self._key("tokens"), self._key("user-roles", name)]
        d = self._script(REMOVE_USER, keys, [name, self._key("roles:")])
        return d.addCallback(lambda removed: int(removed) == 1)

    def add_token(self, token: TokenRecord) -> Deferred[bool]:
        keys = [self._key("users"), self._key("tokens")]
        d = self._script(ADD_TOKEN, keys, [token.username, token.id, _json(token)])
        return d.addCallback(lambda added: int(added) == 1)

    def get_token(self, token_id: str) -> Deferred[TokenRecord | None]:
        d = self._command("HGET", self._key("tokens"), token_id)
        return d.addCallback(lambda token: None if token is None else _token(token))

    def list_tokens(self, username: str | None = None) -> Deferred[list[TokenRecord]]:
        d = self._command("HVALS", self._key("tokens"))
        return d.addCallback(_tokens_of, username)

    def revoke_token(self, token_id: str) -> Deferred[bool]:
        d = self._command("HDEL", self._key("tokens"), token_id)
        return d.addCallback(lambda removed: int(removed) == 1)

    def get_roles(self, name: str) -> Deferred[dict[str, str]]:
        return self._command("HGETALL", self._key("roles", name)).addCallback(_text_pairs)

    def user_roles(self, username: str) -> Deferred[dict[str, str]]:
        d = self._command("HGETALL", self._key("user-roles", username))
        return d.addCallback(_text_pairs)

    def set_role(self, name: str, username: str, role: str | None) -> Deferred[None]:
        if role is not None and role not in ROLES:
            return fail(ValueError(f"unknown role {role!r}"))
        keys = [self._key("roles", name), self._key("user-roles", username)]
        d = self._script(SET_ROLE, keys, [name, username, role or ""])
        return d.addCallback(lambda _: None)

    def claim_project(self, name: str, username: str) -> Deferred[dict[str, str]]:
        keys = [self._key("roles", name), self._key("user-roles", username)]
        return self._script(CLAIM_PROJECT, keys, [name, username]).addCallback(_text_pairs)


def _new_change_id() -> str:
    return secrets.token_hex(8)


def _false_if_unavailable(failure: Failure) -> bool:
    failure.trap(StoreUnavailable)
    return False


def _project(name: str, fields: list[bytes | None]) -> ProjectRecord | None:
    display_name, created, info, serial = fields
    if display_name is None:
        return None
    return ProjectRecord(
        name=name,
        display_name=display_name.decode(),
        serial=int(serial),
        created=parse_time(created.decode()),
        info=parse_info(info),
    )


def _projects(reply: list[list[bytes]]) -> list[ProjectRecord]:
    projects = [_project(name.decode(), fields) for name, *fields in reply]
    return sorted(projects, key=lambda project: project.name)


def _file(record: bytes) -> FileRecord:
    return FileRecord.from_dict(json.loads(record))


# == Yanking, deleting, users, tokens and roles (issue 4) ===========================

# KEYS[1..4]: the change keys, files; ARGV[1..5]: the change arguments;
# ARGV[6]: '1' to yank, '0' to un-yank; ARGV[7]: the reason; ARGV[8..]:
# filenames. Only ``yanked`` changes in each record (cjson keeps the rest:
# records hold strings, numbers and nulls only). Fires with the filenames
# that changed.
SET_YANKED = (
    _CHANGE
    + """
local wanted = cjson.null
if ARGV[6] == '1' then wanted = ARGV[7] end
local changed = {}
for i = 8, #ARGV do
  local record = redis.call('HGET', KEYS[4], ARGV[i])
  if record then
    local file = cjson.decode(record)
    if file.yanked ~= wanted then
      file.yanked = wanted
      redis.call('HSET', KEYS[4], ARGV[i], cjson.encode(file))
      changed[#changed + 1] = ARGV[i]
    end
  end
end
if #changed > 0 then announce(change()) end
return changed
"""
)

# KEYS[4..7]: files, order, metadata, tombstones; ARGV[6..]: filenames.
# Fires with the removed records.
DELETE_FILES = (
    _CHANGE
    + """
local removed = {}
for i = 6, #ARGV do
  local record = redis.call('HGET', KEYS[4], ARGV[i])
  if record then
    redis.call('HDEL', KEYS[4], ARGV[i])
    redis.call('HDEL', KEYS[6], ARGV[i])
    redis.call('LREM', KEYS[5], 0, ARGV[i])
    redis.call('HSET', KEYS[7], ARGV[i], cjson.decode(record).sha256)
    removed[#removed + 1] = record
  end
end
if #removed > 0 then announce(change()) end
return removed
"""
)

# KEYS[1]: users; ARGV[1..2]: name, password hash.
SET_PASSWORD = """
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
local user = cjson.decode(record)
user.password_hash = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(user))
return 1
"""

# KEYS[1..3]: users, tokens, the user's roles; ARGV[1]: name; ARGV[2]: the
# project roles key prefix. The user's tokens go too, and so do their roles.
REMOVE_USER = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local tokens = redis.call('HGETALL', KEYS[2])
for i = 1, #tokens, 2 do
  if cjson.decode(tokens[i + 1]).username == ARGV[1] then
    redis.call('HDEL', KEYS[2], tokens[i])
  end
end
for _, project in ipairs(redis.call('HKEYS', KEYS[3])) do
  redis.call('HDEL', ARGV[2] .. project, ARGV[1])
end
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS[1..2]: users, tokens; ARGV[1..3]: user name, token id, token JSON.
ADD_TOKEN = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# KEYS[1..2]: the project's roles, the user's roles; ARGV[1..3]: project,
# user, role ('' to remove). Both hashes always say the same.
SET_ROLE = """
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
return 1
"""

# As SET_ROLE, ARGV[1..2]: project, user; makes the user owner if nobody has
# a role yet. Fires with the project's roles.
CLAIM_PROJECT = """
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], ARGV[2], 'owner')
  redis.call('HSET', KEYS[2], ARGV[1], 'owner')
end
return redis.call('HGETALL', KEYS[1])
"""


def _json(record: UserRecord | TokenRecord) -> str:
    return json.dumps(record.to_dict(), sort_keys=True)


def _user(data: bytes) -> UserRecord:
    return UserRecord.from_dict(json.loads(data))


def _token(data: bytes) -> TokenRecord:
    return TokenRecord.from_dict(json.loads(data))


def _tokens_of(reply: list[bytes], username: str | None) -> list[TokenRecord]:
    tokens = [_token(data) for data in reply]
    mine = [token for token in tokens if username is None or token.username == username]
    return sorted(mine, key=lambda token: (token.created, token.id))


def _text_pairs(reply: list[bytes]) -> dict[str, str]:
    """A flat HGETALL reply (key, value, key, value...) as a dict of text."""
    return {reply[i].decode(): reply[i + 1].decode() for i in range(0, len(reply), 2)}


# -- leases (one mirror run across processes) ---------------------------------------------

#: Extend a lease only while ``ARGV[1]`` still holds it.
RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

#: Drop a lease only if ``ARGV[1]`` holds it (an expired one may be another's now).
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def try_lease(store: RedisStore, name: str, holder: str, ttl: float) -> Deferred[bool]:
    """Take the lease ``name`` for ``ttl`` seconds if nobody holds it, or renew ours.

    ``SET NX PX``: a holder that dies stops renewing and its lease expires,
    so another process takes over after at most ``ttl``. A free function
    (not a RedisStore method) because it is no part of the metadata contract.
    """
    key = store._key("lease", name)
    milliseconds = max(1, int(ttl * 1000))

    def taken(reply: Any) -> Deferred[bool] | bool:
        if reply is not None:
            return True
        renewed = store._script(RENEW_LEASE, [key], [holder, milliseconds])
        return renewed.addCallback(lambda count: bool(count))

    return store._command("SET", key, holder, "NX", "PX", milliseconds).addCallback(taken)


def release_lease(store: RedisStore, name: str, holder: str) -> Deferred[bool]:
    """Give the lease up at once, if ``holder`` still has it."""
    released = store._script(RELEASE_LEASE, [store._key("lease", name)], [holder])
    return released.addCallback(lambda count: bool(count))

"""Connections to Redis: txredisapi's lazy pool, built by hand, and the change listener.

Through Sentinel, both connect to the primary the sentinels name
(:class:`~ministry.stores.redis.address.SentinelEndpoint`) and check, before
they are used, that it still is one (:func:`primary_only`); a lost
connection asks the sentinels again, so both follow a failover, and the
sentinels' announcement of a switch drops them at once
(:func:`follow_switches`), as a planned failover loses none.

txredisapi is imported inside functions only: importing it installs the
default reactor, which must stay twistd's (or the tests') choice.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from ministry.core.redis_url import RedisAddress
from ministry.stores.redis.address import SentinelEndpoint, endpoint

log = Logger()

#: txredisapi backs off up to 10 s between attempts by default; a refused
#: connection costs nothing, and an index should be back soon after Redis is.
RECONNECT_MAX_DELAY = 2.0

#: The first reconnection's delay through Sentinel (txredisapi's is 1 s): each
#: attempt asks the sentinels again, and a new primary is the likely reason
#: the connection was lost, so the first attempt is made almost at once.
SENTINEL_FIRST_DELAY = 0.1

#: Kernel keepalive for the listener, which only ever receives: without it, a
#: Redis host that vanished would leave it waiting forever on a dead socket
#: and every later change unheard (seconds: idle, between probes; probes).
LISTENER_KEEPALIVE = (10, 5, 3)


#: Where the sentinels announce that a service has a new primary.
SWITCH_CHANNEL = "+switch-master"


def connections(
    reactor: Any,
    address: RedisAddress,
    timeout: float,
    listener: type,
    refused: Callable[[Failure], None],
) -> tuple[Any, Any, list[Any]]:
    """The store's txredisapi factories: its pool, its ``listener``, and :func:`follow_switches`.

    The pool and the listener share one endpoint, so that through Sentinel
    one announcement moves both, and the log says each new primary once.
    ``refused`` hears why Redis refused either (AUTH, SELECT: the only way
    their ``deferred`` fails).
    """
    where = endpoint(reactor, address, timeout)
    pool = connect(reactor, address, timeout, where)
    changes = connect(reactor, address, timeout, where, listener)
    for factory in (pool, changes):
        factory.deferred.addErrback(refused)
    return pool, changes, follow_switches(reactor, address, timeout, where)


def connect(
    reactor: Any,
    address: RedisAddress,
    timeout: float,
    where: IStreamClientEndpoint,
    protocol: type | None = None,
) -> Any:
    """Start a lazy txredisapi pool of one connection to ``where``; returns its factory.

    Built by hand rather than with ``lazyConnectionPool`` to choose the
    endpoint (:func:`ministry.stores.redis.address.endpoint`: verified TLS,
    Sentinel), the reconnection delay and the protocol.
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
    if address.service is not None:
        factory.protocol = primary_only(factory.protocol, address, reactor, timeout)
        factory.initialDelay = SENTINEL_FIRST_DELAY
    factory.startConnecting(where)
    return factory


def follow_switches(
    reactor: Any, address: RedisAddress, timeout: float, where: IStreamClientEndpoint
) -> list[Any]:
    """Listen on every sentinel for the switch of the service's primary; their factories.

    Nothing unless ``where`` is a :class:`SentinelEndpoint`. Every sentinel
    announces a switch, so one of them down hides none. Each is heard on a
    connection of its own, which reconnects by itself; the password is
    offered as to the questions (a sentinel without one refuses it).
    """
    import txredisapi

    if not isinstance(where, SentinelEndpoint):
        return []
    factories = []
    for host, port in address.sentinels:
        factory = txredisapi.RedisFactory(f"sentinel {host}:{port}", None, 1, isLazy=True)
        factory.maxDelay = RECONNECT_MAX_DELAY
        factory.protocol = _switch_listener(address, f"{host}:{port}", where.primary_moved)
        factory.startConnecting(HostnameEndpoint(reactor, host, port, timeout=timeout))
        factories.append(factory)
    return factories


def _switch_listener(
    address: RedisAddress, sentinel: str, moved: Callable[[str, int], None]
) -> type:
    """A subscriber to :data:`SWITCH_CHANNEL` calling ``moved(host, port)`` for the service."""
    import txredisapi

    def refused(failure: Failure) -> None:
        if not failure.check(txredisapi.ConnectionError):  # lost: it reconnects, and asks again
            log.warn(
                "{address}: cannot hear sentinel {sentinel} announce a failover: {why}",
                address=address,
                sentinel=sentinel,
                why=failure.getErrorMessage(),
            )

    class SwitchListener(txredisapi.SubscriberProtocol):
        def connectionMade(self) -> Any:
            if address.password is not None:
                self.auth(address.password, address.username).addErrback(lambda _: None)
            self.subscribe(SWITCH_CHANNEL).addErrback(refused)
            return super().connectionMade()

        def messageReceived(self, pattern: Any, channel: str, message: str) -> None:
            # "<service> <old host> <old port> <new host> <new port>"
            parts = message.split()
            if len(parts) == 5 and parts[0] == address.service and parts[4].isdigit():
                moved(parts[3], int(parts[4]))

    return SwitchListener


def listener_protocol(
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
            keep_alive(self.transport)
            return super().connectionMade()

        def messageReceived(self, pattern: Any, channel: bytes, message: bytes) -> None:
            on_message(message)

    return ChangeListener


def primary_only(base: type, address: RedisAddress, clock: Any, timeout: float) -> type:
    """``base``, checking with ``ROLE`` that the server is a primary before it is used.

    The sentinels may name a server that was just demoted (an answer given
    before a failover, a sentinel cut off from the others). A replica would
    serve stale reads and refuse every write, and since it stays connected
    nothing would make the store ask the sentinels again: the connection is
    dropped instead, and its reconnection asks them (backing off, as a
    connection dropped before it was usable does not reset the delay).
    ``ROLE`` goes first, after ``AUTH`` when there is a password; if it is
    refused, the base class's own ``AUTH`` and ``SELECT`` report why; if the
    connection is lost meanwhile, or no answer comes within ``timeout``
    (the connection is not in the pool yet, so no call's timeout can drop
    it), its reconnection tries again.
    """

    class PrimaryOnly(base):
        def connectionMade(self) -> Any:
            if self.password is not None:
                self.auth(self.password, self.username).addErrback(lambda _: None)
            d = self.execute_command("ROLE")
            d.addTimeout(timeout, clock)
            d.addCallbacks(self._role, self._role_refused)
            return d

        def _role_refused(self, failure: Failure) -> Any:
            if failure.check(defer.TimeoutError):
                self.transport.abortConnection()
                return None
            # Lost: leave it to the reconnection. Calling the base class on a
            # lost connection would fail its AUTH or SELECT, and it then
            # stops reconnecting for good.
            return base.connectionMade(self) if self.connected else None

        def _role(self, reply: Any) -> Any:
            if not self.connected:
                return None
            if reply and reply[0] in (b"master", "master"):
                return base.connectionMade(self)
            peer = self.transport.getPeer()
            log.warn(
                "{address}: {host}:{port} is not the primary (ROLE: {role}); asking the "
                "sentinels again",
                address=address,
                host=peer.host,
                port=peer.port,
                role=reply[0] if reply else reply,
            )
            self.transport.loseConnection()
            return None

    return PrimaryOnly


def keep_alive(transport: Any) -> None:
    """Turn on TCP keepalive, so that a vanished Redis host is noticed (not on unix sockets)."""
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


class InFlight:
    """The calls not settled yet, so that stopping can let them finish first."""

    def __init__(self) -> None:
        self._calls: set[Deferred] = set()
        self._waiters: list[Deferred[None]] = []

    def track(self, d: Deferred) -> Deferred:
        """Count ``d`` in flight until it fires (its result passes through)."""
        self._calls.add(d)

        def settled(result: Any) -> Any:
            self._calls.discard(d)
            if not self._calls:
                waiters, self._waiters = self._waiters, []
                for waiter in waiters:
                    waiter.callback(None)
            return result

        return d.addBoth(settled)

    def when_idle(self) -> Deferred[None]:
        """Fires once no call is in flight (at once if none is)."""
        if not self._calls:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        return waiter

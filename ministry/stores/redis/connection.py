"""Connections to Redis: txredisapi's lazy pool, built by hand, and the change listener.

txredisapi is imported inside functions only: importing it installs the
default reactor, which must stay twistd's (or the tests') choice.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed

from ministry.core.redis_url import RedisAddress
from ministry.stores.redis.address import endpoint

#: txredisapi backs off up to 10 s between attempts by default; a refused
#: connection costs nothing, and an index should be back soon after Redis is.
RECONNECT_MAX_DELAY = 2.0

#: Kernel keepalive for the listener, which only ever receives: without it, a
#: Redis host that vanished would leave it waiting forever on a dead socket
#: and every later change unheard (seconds: idle, between probes; probes).
LISTENER_KEEPALIVE = (10, 5, 3)


def connect(
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
    factory.startConnecting(endpoint(reactor, address, timeout))
    return factory


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

"""The endpoint (TCP, TLS, unix, or the primary named by Sentinel) a parsed ``--redis`` URL names.

Parsing the URL is pure and lives in the core (:mod:`ministry.core.redis_url`),
where the settings check it too; only the Twisted endpoint is built here.

Sentinel. txredisapi's own ``Sentinel`` is not used: it finds the primary
with ``SENTINEL MASTERS`` and accepts no answer while the old primary is
merely suspected down, so a reconnection during a failover waits for its
10 s discovery timeout before trying again; its role check compares a
bytes reply with ``"master"`` and drops every connection of a pool made with
``charset=None`` (ours); and its endpoint cannot carry our protocols or
timeouts. :class:`SentinelEndpoint` instead asks every sentinel
``SENTINEL get-master-addr-by-name`` before each connection attempt, takes
the first answer, and connects there; the connection itself then checks
that the server is still a primary (``connection.primary_only``). The
reconnection that follows a lost connection asks again, which is how a
failover is followed. A planned failover loses no connection: the old
primary lives on, taking writes, until the sentinels demote it some ten
seconds later; so the sentinels' announcement of the switch
(``connection.follow_switches``) drops the connections at once
(:meth:`SentinelEndpoint.primary_moved`).
"""

from __future__ import annotations

from typing import Any
from weakref import WeakSet

from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred, DeferredList, ensureDeferred
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ministry.core.redis_url import RedisAddress

log = Logger()


class NoPrimary(Exception):
    """No sentinel named a primary for the service: why, sentinel by sentinel."""


def endpoint(reactor: Any, address: RedisAddress, timeout: float) -> IStreamClientEndpoint:
    """The endpoint for ``address``: a unix socket, TCP, TCP with verified TLS, or Sentinel's."""
    if address.path is not None:
        return UNIXClientEndpoint(reactor, address.path, timeout=timeout)
    if address.service is not None:
        return SentinelEndpoint(reactor, address, timeout)
    tcp = HostnameEndpoint(reactor, address.host, address.port, timeout=timeout)
    if not address.tls:
        return tcp
    # txredisapi's own TLS option does not check the certificate; this does.
    from twisted.internet.ssl import optionsForClientTLS

    return wrapClientTLS(optionsForClientTLS(address.host), tcp)


@implementer(IStreamClientEndpoint)
class SentinelEndpoint:
    """Connects to whichever server the sentinels name as the primary of the service now.

    Each sentinel is asked on a connection of its own, within ``timeout``;
    the credentials of the URL are offered to the sentinels too (a sentinel
    without a password refuses them, which is ignored), so sentinels
    protected by the same password as Redis work as well.
    """

    def __init__(self, reactor: Any, address: RedisAddress, timeout: float) -> None:
        self._reactor = reactor
        self._address = address
        self._timeout = timeout
        self._primary: tuple[str, int] | None = None  # the last one named, for the log
        self._why: str | None = None  # the last reason no primary was found, for the log
        self._connections: WeakSet[Any] = WeakSet()  # what primary_moved may drop

    def __repr__(self) -> str:
        """For ClientService's retry lines in the log: the address, without its password."""
        return f"<SentinelEndpoint {self._address}>"

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        return ensureDeferred(self._connect(protocolFactory))

    async def _connect(self, protocolFactory: Any) -> Any:
        host, port = await self._find_primary()
        primary = HostnameEndpoint(self._reactor, host, port, timeout=self._timeout)
        protocol = await primary.connect(protocolFactory)
        self._connections.add(protocol)
        return protocol

    def primary_moved(self, host: str, port: int) -> None:
        """The sentinels announced ``host:port`` as the primary: drop connections elsewhere.

        Aborted, not closed: a reply the old primary would still send is
        not waited for, so the write it answers is reported unconfirmed
        (503) rather than acknowledged and then lost. Their reconnection
        asks the sentinels, and checks the role, as always.
        """
        self._named((host, port))
        for protocol in list(self._connections):
            transport = protocol.transport
            peer = transport.getPeer()
            if transport.connected and (peer.host, peer.port) != (host, port):
                transport.abortConnection()

    async def _find_primary(self) -> tuple[str, int]:
        """The first answer of all the sentinels asked at once; the others are cancelled."""
        asked = [self._ask(host, port) for host, port in self._address.sentinels]
        first = DeferredList(asked, fireOnOneCallback=True, consumeErrors=True)
        outcome = await first
        if isinstance(outcome, tuple):  # (answer, index): one sentinel answered
            for other in asked:
                other.cancel()
            return self._named(outcome[0])
        failures = [failure for _, failure in outcome]
        if all(failure.check(CancelledError) for failure in failures):
            raise CancelledError()  # the store is stopping: nothing to report
        reasons = "; ".join(failure.getErrorMessage() for failure in failures)
        why = f"no sentinel named the primary of {self._address.service!r}: {reasons}"
        if why != self._why:
            log.warn("{address}: {why}", address=self._address, why=why)
            self._why = why
        raise NoPrimary(why)

    def _named(self, primary: tuple[str, int]) -> tuple[str, int]:
        if primary != self._primary:
            log.info(
                "{address}: the sentinels name {host}:{port} as the primary",
                address=self._address,
                host=primary[0],
                port=primary[1],
            )
        self._primary, self._why = primary, None
        return primary

    def _ask(self, host: str, port: int) -> Deferred[tuple[str, int]]:
        """One sentinel's answer, within the timeout; its connection is closed either way."""
        d = ensureDeferred(self._ask_sentinel(host, port))
        d.addTimeout(self._timeout, self._reactor)
        d.addErrback(_sentinel_failed, f"{host}:{port}", self._timeout)
        return d

    async def _ask_sentinel(self, host: str, port: int) -> tuple[str, int]:
        import txredisapi

        sentinel = HostnameEndpoint(self._reactor, host, port, timeout=self._timeout)
        # Neither password nor db given to the protocol: it is usable at once.
        once = Factory.forProtocol(lambda: txredisapi.RedisProtocol(charset="utf-8"))
        once.noisy = False  # not two lines in the log for every question
        protocol = await sentinel.connect(once)
        try:
            if self._address.password is not None:
                offered = protocol.auth(self._address.password, self._address.username)
                offered.addErrback(lambda _: None)  # a sentinel without a password refuses it
            reply = await protocol.execute_command(
                "SENTINEL", "get-master-addr-by-name", self._address.service
            )
        finally:
            protocol.transport.abortConnection()
        if not reply:
            raise LookupError(f"knows no primary named {self._address.service!r}")
        primary_host, primary_port = reply
        return str(primary_host), int(primary_port)


def _sentinel_failed(failure: Failure, sentinel: str, timeout: float) -> Failure:
    """The failure of asking one sentinel, its message naming the sentinel."""
    if failure.check(CancelledError, ConnectingCancelledError):
        raise CancelledError()  # another sentinel answered first, or the store is stopping
    why = f"no answer within {timeout:g} s" if failure.check(defer.TimeoutError) else failure.value
    return Failure(NoPrimary(f"sentinel {sentinel}: {why}"))

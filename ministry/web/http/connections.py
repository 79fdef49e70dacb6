"""Caps on open connections, so that slow or hostile peers cannot lock others out.

Each connection holds a file descriptor, and a process has a fixed number of
them (``ulimit -n``). Peers that opened connections and sent their heads a
byte at a time held them all: with the limit at 100, 87 such connections
kept every other client out. The head deadline (``ministry.web.http.channel``)
ends each of them in time; these caps bound how many there are meanwhile:

- one client address holds at most ``per_client`` connections. At its cap,
  a new one is let in by closing that client's own connection that has
  waited longest for a request (a pooled keep-alive connection, which the
  client's HTTP library reopens without a word): one uv install opens dozens
  at once, and a build host runs several, so refusing would fail installs
  that only left idle connections behind. Only when every one of them is
  busy with a request is the newcomer answered 503. A trusted proxy's
  connections are not counted per client (nor a Unix socket's peers): they
  carry many clients, whose address is only known from each request's
  ``X-Forwarded-For``; per-client caps then belong in the proxy (nginx's
  ``limit_conn``). They count towards the total;
- at most ``total`` connections are open. At the cap a new connection is
  let in by closing the one that has waited longest for a request (its head
  still arriving, or idle between requests): trickling peers age out in
  the order they came, and cannot keep a newcomer out. Only when every
  connection is busy with a request is the newcomer refused (503);
- ``total`` is lowered, when the server starts, to what the descriptor
  limit allows: :data:`FD_RESERVE` kept for the store, logs and listening
  sockets, and two per connection (its socket and the file it may be
  sending or staging).

A refused connection is answered without reading its request and closed
without lingering: under a flood, refusals must cost less than serving.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from typing import Protocol

from twisted.internet import protocol
from twisted.logger import Logger

from ministry.config import Settings
from ministry.core.errors import MinistryError
from ministry.web.http.clients import TrustedProxies
from ministry.web.http.responses import refusal_bytes
from ministry.web.http.sending import write_at_once

log = Logger()

#: Descriptors kept for everything that is not a connection.
FD_RESERVE = 64
#: Descriptors a connection may hold: its socket, and a file.
FDS_PER_CONNECTION = 2
#: Refused connections are reported in the log at most this often.
REPORT_SECONDS = 10.0


@dataclass(frozen=True)
class ConnectionLimits:
    """``--header-timeout``, ``--max-connections[-per-client]`` and ``--trusted-proxy``."""

    total: int = 1000
    per_client: int = 256
    header_timeout: float = 20.0
    proxies: TrustedProxies = field(default_factory=TrustedProxies)

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            settings.max_connections,
            settings.max_connections_per_client,
            settings.header_timeout,
            TrustedProxies(settings.trusted_proxy),
        )


class Tracked(Protocol):
    """What the tracker needs of a channel."""

    transport: object

    def waiting_since(self) -> float | None:
        """Since when it has waited for a request (monotonic), or None while busy with one."""

    def evict(self) -> None:
        """Close at once, to make room."""


class _Refused(protocol.Protocol):
    """A connection over a cap: the refusal is written and the connection closed."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def connectionMade(self) -> None:
        write_at_once(self.transport, self.answer)
        self.transport.loseConnection()


class Connections:
    """The open connections of one site, and the caps on them (see the module docstring)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.total = limits.total
        #: Each open connection, and its client key (None: not counted per client).
        self._open: dict[Tracked, str | None] = {}
        self._per_client: dict[str, int] = {}
        #: Connections refused so far, for the log.
        self.refused = 0
        self._reported = -REPORT_SECONDS

    def start(self) -> None:
        """Lower the total cap to what the descriptor limit allows (when the site starts)."""
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        allowed = self.limits.total
        if soft != resource.RLIM_INFINITY:
            allowed = max(1, min(allowed, (soft - FD_RESERVE) // FDS_PER_CONNECTION))
        self.total = allowed
        if allowed < self.limits.total:
            log.warn(
                "At most {total} connections (not --max-connections {wanted}): the open-file "
                "limit is {soft}; raise it (ulimit -n, systemd's LimitNOFILE=) for more.",
                total=allowed,
                wanted=self.limits.total,
                soft=soft,
            )

    def __len__(self) -> int:
        return len(self._open)

    def _key(self, peer: object) -> str | None:
        host = getattr(peer, "host", None)
        if host is None or self.limits.proxies.trusts(peer):
            return None
        return host

    def admit(self, peer: object) -> protocol.Protocol | None:
        """None to let a new connection from ``peer`` in, or the protocol that refuses it."""
        key = self._key(peer)
        at_client_cap = key is not None and self._per_client.get(key, 0) >= self.limits.per_client
        if at_client_cap and not self._make_room(key):
            return self._refuse(
                f"Too many connections from {key}: at most {self.limits.per_client} at once."
            )
        if len(self._open) >= self.total and not self._make_room():
            return self._refuse(
                f"Too many connections: the index is busy with {len(self._open)}; try again."
            )
        return None

    def _make_room(self, key: str | None = None) -> bool:
        """Close the connection that has waited longest for a request; whether there was one.

        With ``key``, only that client's connections are candidates.
        """
        oldest, since = None, None
        for channel, client in self._open.items():
            if key is not None and client != key:
                continue
            waiting = channel.waiting_since()
            if waiting is not None and (since is None or waiting < since):
                oldest, since = channel, waiting
        if oldest is None:
            return False
        self.closed(oldest)
        oldest.evict()
        return True

    def _refuse(self, reason: str) -> protocol.Protocol:
        self.refused += 1
        now = time.monotonic()
        if now - self._reported >= REPORT_SECONDS:
            self._reported = now
            log.warn(
                "Refused a connection ({count} so far): {reason}", count=self.refused, reason=reason
            )
        return _Refused(refusal_bytes(MinistryError(reason, status=503)))

    def opened(self, channel: Tracked) -> None:
        key = self._key(channel.transport.getPeer())
        self._open[channel] = key
        if key is not None:
            self._per_client[key] = self._per_client.get(key, 0) + 1

    def closed(self, channel: Tracked) -> None:
        """Forget a connection; more than once is harmless (an evicted one closes later)."""
        if channel not in self._open:
            return
        key = self._open.pop(channel)
        if key is not None:
            left = self._per_client[key] - 1
            if left:
                self._per_client[key] = left
            else:
                del self._per_client[key]

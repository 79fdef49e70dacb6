"""Changes to the index, heard from every process and announced here once each.

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
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ministry.core.errors import StoreUnavailable
from ministry.core.redis_url import RedisAddress
from ministry.stores.redis.scripts import CHANGED_SINCE, ScriptRunner
from ministry.stores.subscribers import Subscribers

log = Logger()

#: How many recent change ids are remembered as announced, so that one
#: change arriving by two paths is announced once; older ones are forgotten
#: (at worst a late echo is announced twice, which is harmless).
ANNOUNCED_MEMORY = 10_000


def new_change_id() -> str:
    """A change's random id, made by its writer (see notifications above)."""
    return secrets.token_hex(8)


def cooldown_keys(key: Callable[..., str]) -> list[str]:
    """The zset of proxied projects by the serial of their last cooldown exception change,
    and the hash of those changes' ids (see :mod:`~ministry.stores.redis.cooldown`).

    ``key`` is the store's key builder. Catching up reads these beside ``projects``.
    """
    return [key("cooldown", "changes"), key("cooldown", "change")]


class ChangeFeed:
    """The store's subscribers, told once of each change, by whichever path comes first.

    ``key`` builds the store's prefixed keys, ``script`` runs a script with
    the store's timeout, ``running`` says whether the store is still running.
    """

    def __init__(
        self,
        key: Callable[..., str],
        script: ScriptRunner,
        address: RedisAddress,
        running: Callable[[], bool],
    ) -> None:
        self._key = key
        self._script = script
        self._address = address
        self._running = running
        self.subscribers = Subscribers()
        self._announced: dict[str, None] = {}  # insertion-ordered set of change ids
        self._heard_up_to = 0  # every change up to this serial has been announced
        self._in_sync = False  # whether messages now arrive with no gap before them

    def restart(self) -> None:
        """The store (re)starts: its first subscription catches up from serial 0.

        That covers reads served before the listener connected.
        """
        self._heard_up_to, self._in_sync = 0, False

    def announce(self, change: str, name: str) -> None:
        """Tell the subscribers that ``name`` changed, unless this change was told already."""
        if change in self._announced:
            return
        self._announced[change] = None
        if len(self._announced) > ANNOUNCED_MEMORY:
            del self._announced[next(iter(self._announced))]
        self.subscribers.notify(name)

    def heard(self, message: bytes) -> None:
        """A change announced on the channel, by this process or another."""
        try:
            text, change, name = message.decode().split(" ", 2)
            serial = int(text)
        except ValueError:  # not ours: someone else publishing on the channel
            log.warn("Ignored a malformed change message: {message!r}", message=message)
            return
        self.announce(change, name)
        if self._in_sync:
            self._heard_up_to = max(self._heard_up_to, serial)

    def listen(self, listener: Any) -> None:
        """A listener connection is ready: subscribe, then catch up on what it missed."""
        d = listener.subscribe(self._key("changes"))
        # Runs as SUBSCRIBE is confirmed, before any message behind it.
        d.addCallback(lambda _: self._catch_up(self._heard_up_to))
        d.addErrback(self._listening_failed, listener)

    def _catch_up(self, since: int) -> Deferred[None]:
        """Announce what changed after serial ``since``; messages are heard again meanwhile."""
        self._in_sync = False
        keys = [self._key("serial"), self._key("projects"), *cooldown_keys(self._key)]
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
                address=self._address,
                since=since,
                serial=serial,
            )
            self._heard_up_to = 0
            return self._catch_up(0)
        for name, change in reply[1]:
            self.announce(change.decode(), name.decode())
        self._heard_up_to = max(self._heard_up_to, serial)
        self._in_sync = True
        return None

    def _listening_failed(self, failure: Failure, listener: Any) -> None:
        if not self._running():
            return  # stopping: the listener is being closed anyway
        if failure.check(StoreUnavailable):
            log.warn("Could not catch up on changes, listening again: {why}", why=failure.value)
        else:
            log.failure("Could not catch up on changes, listening again", failure)
        listener.transport.loseConnection()  # its reconnection tries again

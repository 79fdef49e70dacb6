"""The Redis store's :class:`ILease`: one holder across every process on one Redis.

``SET NX PX``: a holder that dies stops renewing and its key expires in
Redis, so another process takes over after at most the duration asked for.
Renewing and releasing check the holder in a script, so a holder whose
lease expired can never extend or drop the lease of the process that took
it over. Expiry is Redis's clock, not this process's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ministry.interfaces import ILease
from ministry.stores.redis.scripts import RELEASE_LEASE, RENEW_LEASE, ScriptRunner


def _milliseconds(duration: float) -> int:
    return max(1, int(duration * 1000))


@implementer(ILease)
class RedisLease:
    """The lease stored at ``key``, through the store's calls (with their timeout)."""

    def __init__(
        self, key: str, command: Callable[..., Deferred[Any]], script: ScriptRunner
    ) -> None:
        self.key = key
        self._command = command
        self._script = script

    def acquire(self, holder: str, duration: float) -> Deferred[bool]:
        """Take the lease if nobody holds it, or renew it if ``holder`` does."""
        milliseconds = _milliseconds(duration)

        def taken(reply: Any) -> Deferred[bool] | bool:
            return True if reply is not None else self.renew(holder, duration)

        d = self._command("SET", self.key, holder, "NX", "PX", milliseconds)
        return d.addCallback(taken)

    def renew(self, holder: str, duration: float) -> Deferred[bool]:
        """Extend the lease, only while ``holder`` still holds it."""
        d = self._script(RENEW_LEASE, [self.key], [holder, _milliseconds(duration)])
        return d.addCallback(bool)

    def release(self, holder: str) -> Deferred[bool]:
        """Give the lease up at once, if ``holder`` still holds it."""
        return self._script(RELEASE_LEASE, [self.key], [holder]).addCallback(bool)

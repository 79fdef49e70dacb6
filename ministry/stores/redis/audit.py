"""The Redis store's audit log: ``append_audit`` and ``list_audit``.

Kept apart from ``store.py``, which is at its size limit; :class:`AuditLog`
is a base of :class:`~ministry.stores.redis.store.RedisStore`. Each entry
is the JSON of ``AuditEvent.to_dict()``, pushed onto two lists under the
store's prefix by one script (so both or neither have it): ``audit`` with
every entry and ``audit:<project>`` with one project's. LPUSH puts the
newest at the head, so a listing is one LRANGE. Entries are kept for good:
an audit log that forgets is not one.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed

from ministry.core.audit import DEFAULT_LIMIT, AuditEvent

# KEYS[1]: every entry; KEYS[2]: the project's entries; ARGV[1]: the entry.
APPEND = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
"""


class _Store(Protocol):
    """What of the store this uses."""

    def _key(self, *parts: str) -> str: ...

    def _command(self, *args: Any) -> Deferred[Any]: ...

    def _script(self, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]: ...


class AuditLog:
    """``append_audit`` and ``list_audit`` for :class:`RedisStore`."""

    def append_audit(self: _Store, event: AuditEvent) -> Deferred[None]:
        keys = [self._key("audit"), self._key("audit", event.project)]
        d = self._script(APPEND, keys, [event.to_json()])
        return d.addCallback(lambda _: None)

    def list_audit(
        self: _Store, project: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Deferred[list[AuditEvent]]:
        if limit < 1:
            return succeed([])
        key = self._key("audit") if project is None else self._key("audit", project)
        d = self._command("LRANGE", key, 0, limit - 1)
        return d.addCallback(lambda entries: [AuditEvent.from_json(e) for e in entries])

"""The Redis store's cooldown exceptions (see :mod:`ministry.core.cooldown`) and refreshes.

Kept apart from ``store.py``, which is at its size limit;
:class:`CooldownExceptions` is a base of
:class:`~ministry.stores.redis.store.RedisStore`. Every exception is one
field of the ``cooldown`` hash (``<project> <release key>``, see
``release_key``) holding ``CooldownException.to_dict()`` as JSON: there
are few, and the proxy reads one project's only when it builds a view.

An exception, or a refresh (``ministry-admin cache drop``), is about a
proxied project, which has no ``project:`` hash and so no serial; yet every
process must drop that project's cached pages. So a change bumps the global
serial, records it in the ``cooldown:changes`` zset (a name older than
refreshes; its change id in ``cooldown:change``) and is PUBLISHed like any other;
``CHANGED_SINCE`` reads that zset too, so a process that missed the message
catches up on it as on an upload.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred

from ministry.core.cooldown import CooldownException, release_key
from ministry.stores.redis.changes import ChangeFeed, cooldown_keys, new_change_id
from ministry.stores.redis.records import text_pairs

# KEYS[1]: serial; KEYS[2]: cooldown; KEYS[3]: cooldown:changes; KEYS[4]:
# cooldown:change. ARGV[1]: project; ARGV[2]: field, or '' for a refresh
# (no exception changes); ARGV[3]: the record's JSON, or '' to remove it;
# ARGV[4]: change id; ARGV[5]: channel. Fires with 1, or 0 when there was
# nothing to remove (then nothing changed).
CHANGE_EXCEPTION = """
if ARGV[2] ~= '' then
  if ARGV[3] == '' then
    if redis.call('HDEL', KEYS[2], ARGV[2]) == 0 then return 0 end
  else
    redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  end
end
local serial = string.format('%d', redis.call('INCR', KEYS[1]))
redis.call('ZADD', KEYS[3], serial, ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], serial .. ' ' .. ARGV[4] .. ' ' .. ARGV[1])
return 1
"""


def _field(project: str, version: str | None) -> str:
    return f"{project} {release_key(version)}"


class _Store(Protocol):
    """What of the store this uses."""

    _changes: ChangeFeed

    def _key(self, *parts: str) -> str: ...

    def _command(self, *args: Any) -> Deferred[Any]: ...

    def _script(self, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]: ...


class CooldownExceptions:
    """The cooldown exceptions and upstream refreshes of :class:`RedisStore`."""

    def allow_cooldown(self: _Store, exception: CooldownException) -> Deferred[None]:
        field = _field(exception.project, exception.version)
        d = _change(self, exception.project, field, exception.to_json())
        return d.addCallback(lambda _: None)

    def revoke_cooldown(self: _Store, name: str, version: str | None) -> Deferred[bool]:
        return _change(self, name, _field(name, version), "")

    def cooldown_exceptions(
        self: _Store, name: str | None = None
    ) -> Deferred[list[CooldownException]]:
        d = self._command("HGETALL", self._key("cooldown"))
        return d.addCallback(_listed, name)

    def refresh_upstream(self: _Store, name: str) -> Deferred[None]:
        return _change(self, name, "", "").addCallback(lambda _: None)


def _change(store: _Store, name: str, field: str, record: str) -> Deferred[bool]:
    change = new_change_id()
    keys = [store._key("serial"), store._key("cooldown"), *cooldown_keys(store._key)]
    args = [name, field, record, change, store._key("changes")]
    d = store._script(CHANGE_EXCEPTION, keys, args)
    return d.addCallback(_announced, store._changes, name, change)


def _announced(changed: int, changes: ChangeFeed, name: str, change: str) -> bool:
    if changed:
        changes.announce(change, name)
    return bool(changed)


def _listed(reply: list[bytes], name: str | None) -> list[CooldownException]:
    found = (CooldownException.from_json(record) for record in text_pairs(reply).values())
    chosen = [item for item in found if name is None or item.project == name]
    return sorted(chosen, key=lambda item: (item.project, release_key(item.version)))

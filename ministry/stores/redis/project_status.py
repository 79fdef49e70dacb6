"""The Redis store's PEP 792 project status: its script and ``set_project_status``.

Kept apart from ``store.py`` and ``scripts.py``, which are at their size
limit. :class:`ProjectStatusWrites` is a base of
:class:`~ministry.stores.redis.store.RedisStore` and uses the store's change
keys, script runner and change feed, so a status change is one script and is
announced like a yank: serial bumped, PUBLISHed, every process's cached
pages dropped.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred, fail

from ministry.core.models import STATUSES, ProjectRecord
from ministry.stores.redis.changes import ChangeFeed, new_change_id
from ministry.stores.redis.records import project_record
from ministry.stores.redis.scripts import CHANGE, FIELDS

# KEYS[1..3]: the change keys; ARGV[1..5]: the change arguments; ARGV[6]:
# the status; ARGV[7]: '1' if there is a reason; ARGV[8]: it. A change only
# if status or reason differ. Fires with {1 if changed else 0,
# PROJECT_FIELDS...}, or with an empty list when the project does not exist
# (it is never created here).
SET_STATUS = (
    CHANGE
    + """
if redis.call('EXISTS', KEYS[3]) == 0 then return {} end
local reason = false
if ARGV[7] == '1' then reason = ARGV[8] end
local old = redis.call('HMGET', KEYS[3], 'status', 'status_reason')
local changed = 0
if (old[1] or 'active') ~= ARGV[6] or old[2] ~= reason then
  redis.call('HSET', KEYS[3], 'status', ARGV[6])
  if reason then
    redis.call('HSET', KEYS[3], 'status_reason', reason)
  else
    redis.call('HDEL', KEYS[3], 'status_reason')
  end
  announce(change())
  changed = 1
end
return {changed, unpack(redis.call('HMGET', KEYS[3], FIELDS))}
""".replace("FIELDS", FIELDS)
)


class _Store(Protocol):
    """What of the store this uses."""

    _changes: ChangeFeed

    def _change_keys(self, name: str) -> list[str]: ...

    def _change_args(self, name: str, display_name: str, change: str) -> list[str]: ...

    def _script(self, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]: ...


class ProjectStatusWrites:
    """``set_project_status`` for :class:`RedisStore`."""

    def set_project_status(
        self: _Store, name: str, status: str, reason: str | None
    ) -> Deferred[ProjectRecord | None]:
        if status not in STATUSES:
            return fail(ValueError(f"unknown project status {status!r}"))
        change = new_change_id()
        args = [
            *self._change_args(name, name, change),
            status,
            "0" if reason is None else "1",
            reason or "",
        ]
        d = self._script(SET_STATUS, self._change_keys(name), args)
        return d.addCallback(_status_set, self._changes, name, change)


def _status_set(
    reply: list[Any], changes: ChangeFeed, name: str, change: str
) -> ProjectRecord | None:
    """The project after the script (None: not hosted), its change announced if it was one."""
    if not reply:
        return None
    changed, *fields = reply
    if changed:
        changes.announce(change, name)
    return project_record(name, fields)

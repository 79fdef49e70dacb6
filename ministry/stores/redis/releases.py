"""The Redis store's writes that bring a release's summary: files, registrations, offers.

Kept apart from ``store.py`` and ``scripts.py``, which are at their size
limit; :class:`ReleaseWrites` is a base of
:class:`~ministry.stores.redis.store.RedisStore` and uses its change keys,
script runner and change feed, so each write is one script announced like
any other change.

A project's summary is kept by the rule of :mod:`ministry.core.summaries`,
which compares versions with ``packaging`` and so cannot run in Lua. The
write reads the version the kept summary came from, decides in Python, and
hands the script what it read: the script takes the summary only if that
version is still the one stored, and otherwise changes nothing and replies
``moved`` (another process's write came between), and the write is decided
again. A summary not taken needs no such check: the kept version only ever
grows, so an offer older than what was read is older than what is there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred, ensureDeferred, succeed

from ministry.core.models import SDIST, FileRecord, ProjectRecord
from ministry.core.names import release_version
from ministry.core.summaries import registered_summary, replacement
from ministry.stores.redis.changes import ChangeFeed, new_change_id
from ministry.stores.redis.records import claim_outcome, project_record, to_json
from ministry.stores.redis.scripts import CHANGE, FIELDS

# Shared by the scripts below. ARGV[at..at + 3]: '1' if the summary is
# taken, the summary version the caller read ('' for none), the summary,
# its version ('' for none).
SUMMARY = """
local function summary_moved(at)
  if ARGV[at] ~= '1' then return false end
  return (redis.call('HGET', KEYS[3], 'summary_version') or '') ~= ARGV[at + 1]
end
local function take_summary(at)
  if ARGV[at] ~= '1' then return end
  redis.call('HSET', KEYS[3], 'summary', ARGV[at + 2])
  if ARGV[at + 3] == '' then
    redis.call('HDEL', KEYS[3], 'summary_version')
  else
    redis.call('HSET', KEYS[3], 'summary_version', ARGV[at + 3])
  end
end
"""

# KEYS[1..3]: the change keys; KEYS[4..8]: files, order, metadata,
# tombstones, sdists; ARGV[1..5]: the change arguments; ARGV[6..11]:
# filename, sha256, record JSON, '1' if there is metadata, metadata bytes,
# the release of an sdist ('' for a wheel): one sdist per release;
# ARGV[12..15]: the summary's.
ADD_FILE = (
    CHANGE
    + SUMMARY
    + """
if summary_moved(12) then return {'moved'} end
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
take_summary(12)
redis.call('HSET', KEYS[4], ARGV[6], ARGV[8])
redis.call('RPUSH', KEYS[5], ARGV[6])
if ARGV[9] == '1' then redis.call('HSET', KEYS[6], ARGV[6], ARGV[10]) end
announce(serial)
return {'added', serial}
"""
)

# ARGV[6]: the info JSON, which replaces the previous info; ARGV[7..10]:
# the summary's. Fires with PROJECT_FIELDS.
REGISTER = (
    CHANGE
    + SUMMARY
    + """
if summary_moved(7) then return {'moved'} end
local serial = change()
redis.call('HSET', KEYS[3], 'info', ARGV[6])
take_summary(7)
announce(serial)
return redis.call('HMGET', KEYS[3], FIELDS)
""".replace("FIELDS", FIELDS)
)

# ARGV[6..9]: the summary's (always taken). Fires with 1, or 0 when the
# project does not exist (it is never created here).
OFFER_SUMMARY = (
    CHANGE
    + SUMMARY
    + """
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
if summary_moved(6) then return {'moved'} end
take_summary(6)
announce(change())
return 1
"""
)

#: The summary arguments of a write that takes none.
NO_SUMMARY = ["0", "", "", ""]


class _Store(Protocol):
    """What of the store this uses."""

    _changes: ChangeFeed

    def _key(self, *parts: str) -> str: ...

    def _command(self, *args: Any) -> Deferred[Any]: ...

    def _change_keys(self, name: str) -> list[str]: ...

    def _change_args(self, name: str, display_name: str, change: str) -> list[str]: ...

    def _script(self, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]: ...


async def _offering(
    store: _Store,
    name: str,
    offered: tuple[str, str | None] | None,
    run: Callable[[list[str]], Deferred[Any]],
) -> Any:
    """``run``'s reply, given the summary arguments for ``offered``: decided again while ``moved``.

    The arguments are NO_SUMMARY when nothing is offered, or when the offer
    would change nothing: older than the summary kept, or equal to it.
    """
    while True:
        args = NO_SUMMARY
        if offered is not None:
            fields = ("summary", "summary_version")
            summary, of = await store._command("HMGET", store._key("project", name), *fields)
            read = None if of is None else of.decode()
            kept = replacement(*offered, read)
            if kept is not None and (summary is None or kept != (summary.decode(), read)):
                args = ["1", read or "", kept[0], kept[1] or ""]
        reply = await run(args)
        if reply != [b"moved"]:
            return reply


class ReleaseWrites:
    """``add_file``, ``register`` and ``offer_summary`` for :class:`RedisStore`."""

    def add_file(
        self: _Store,
        record: FileRecord,
        display_name: str,
        metadata: bytes | None,
        summary: str | None = None,
    ) -> Deferred[bool]:
        name, change = record.project, new_change_id()
        keys = [
            *self._change_keys(name),
            self._key("files", name),
            self._key("order", name),
            self._key("metadata", name),
            self._key("tombstones", name),
            self._key("sdists", name),
        ]
        claim = [
            *self._change_args(name, display_name, change),
            record.filename,
            record.sha256,
            to_json(record),
            "0" if metadata is None else "1",
            b"" if metadata is None else metadata,
            release_version(record.version) if record.packagetype == SDIST else "",
        ]
        offered = None if summary is None else (summary, record.version)

        def run(summary_args: list[str]) -> Deferred[Any]:
            return self._script(ADD_FILE, keys, [*claim, *summary_args])

        d = ensureDeferred(_offering(self, name, offered, run))
        return d.addCallback(_file_claimed, self._changes, record, change)

    def register(self: _Store, name: str, display_name: str, info: dict) -> Deferred[ProjectRecord]:
        change = new_change_id()
        registration = [
            *self._change_args(name, display_name, change),
            json.dumps(info, sort_keys=True),
        ]

        def run(summary_args: list[str]) -> Deferred[Any]:
            return self._script(REGISTER, self._change_keys(name), [*registration, *summary_args])

        d = ensureDeferred(_offering(self, name, registered_summary(info), run))
        return d.addCallback(_registered, self._changes, name, change)

    def offer_summary(self: _Store, name: str, summary: str, version: str | None) -> Deferred[bool]:
        change = new_change_id()
        offer = self._change_args(name, name, change)

        def run(summary_args: list[str]) -> Deferred[Any]:
            if summary_args == NO_SUMMARY:  # nothing would change: no script, no serial
                return succeed(0)
            return self._script(OFFER_SUMMARY, self._change_keys(name), [*offer, *summary_args])

        d = ensureDeferred(_offering(self, name, (summary, version), run))
        return d.addCallback(_offered, self._changes, name, change)


def _file_claimed(reply: list[bytes], changes: ChangeFeed, record: FileRecord, change: str) -> bool:
    added = claim_outcome(reply, record)
    if added:
        changes.announce(change, record.project)
    return added


def _registered(
    fields: list[bytes | None], changes: ChangeFeed, name: str, change: str
) -> ProjectRecord:
    changes.announce(change, name)
    project = project_record(name, fields)
    assert project is not None  # the script has just written it
    return project


def _offered(changed: int, changes: ChangeFeed, name: str, change: str) -> bool:
    if changed:
        changes.announce(change, name)
    return bool(changed)

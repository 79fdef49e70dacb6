"""The Lua scripts of the Redis store, as data, and the one way they are run.

Key layout, everything under ``prefix`` (``{p}``) so that several indexes can
share one Redis; prefixes must not be prefixes of one another::

    {p}serial              string  the global serial (INCR); absent means 0
    {p}projects            zset    canonical name -> serial of its last change
    {p}project:{name}      hash    display_name, created (format_time),
                                   info (JSON: field -> values), serial,
                                   change (random id of its last change),
                                   status (PEP 792; absent: active),
                                   status_reason (absent: none),
                                   summary, summary_version (absent: none;
                                   kept as .releases says)
    {p}files:{name}        hash    filename -> JSON of FileRecord.to_dict()
    {p}order:{name}        list    filenames in upload order (RPUSH)
    {p}metadata:{name}     hash    filename -> core metadata bytes (no field: None)
    {p}tombstones:{name}   hash    filename -> sha256 of a deleted file (never reused)
    {p}sdists:{name}       hash    release (names.release_version) -> its sdist's
                                   filename; an entry whose file was deleted is
                                   stale, ignored and replaced by the next sdist
    {p}changes             pub/sub channel: "<serial> <change> <name>"
    {p}users               hash    user name -> JSON of UserRecord.to_dict()
    {p}tokens              hash    token id -> JSON of TokenRecord.to_dict()
    {p}roles:{name}        hash    user name -> role in the project
    {p}user-roles:{user}   hash    project name -> role (the same roles, by user)
    {p}teams, team:{name}, user-teams:{user}   teams (see .teams); roles as '@team'
    {p}lease:{name}        string  the holder of a lease (SET NX PX: it expires)
    {p}cache:sizes         hash    proxied file's blob key -> its size (held files)
    {p}cache:lru           zset    held, unpinned blob key -> last use (milliseconds)
    {p}cache:pinned        set     blob keys never evicted (mirrored files)
    {p}cache:total         string  the bytes of cache:lru's keys (what eviction bounds)

Records are the same JSON documents the SQLite store keeps, so both stores
agree on every field by construction. The ``projects`` zset both lists the
projects and answers "what changed after serial N" (see catching up in
:mod:`ministry.stores.redis.changes`).

Atomicity. Each change is one Lua script (EVAL, then EVALSHA once Redis has
it), and Redis runs a script with nothing interleaved, whichever process
sent it. ``add_file`` checks the filename (same sha256: no-op; other bytes:
conflict) and, for an sdist, that its release has no other one, then
stores the record and metadata, creates the project if needed, INCRs the
serial, records it as the project's serial and PUBLISHes the change, all
in one step; ``register`` does the same for the project info. So a
filename (and a release's sdist) is claimed by exactly one process, and
serials never repeat or go backwards -- as long as Redis keeps its data:
run it with ``appendonly yes``, because a Redis that restarts from an older
snapshot (or empty) hands out the lost serials again. Redis Cluster is not
supported (the scripts touch keys of several projects).

Each script's comment names its KEYS and ARGV; the store builds both. The
scripts of ``add_file`` and ``register`` are with their callers, in
:mod:`~ministry.stores.redis.releases`, and the PEP 792 status script in
:mod:`~ministry.stores.redis.project_status`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from ministry.stores.redis.records import PROJECT_FIELDS

#: How a script is run: ``(script, keys, args)`` -> its reply, within the timeout.
ScriptRunner = Callable[[str, list[str], list[Any]], Deferred[Any]]


def run_script(
    call: Callable[..., Deferred[Any]], script: str, keys: list[str], args: list[Any]
) -> Deferred[Any]:
    """Run ``script`` with ``call`` (the store's txredisapi call, with its timeout).

    txredisapi's ``eval`` sends the source once per connection, then only its
    SHA1 (EVALSHA), and the source again if Redis forgot it (a restart,
    SCRIPT FLUSH): the scripts are plain strings, never loaded ahead.
    """
    return call("eval", script, keys, args)


#: PROJECT_FIELDS as a Lua argument list, for the scripts that reply with a project.
FIELDS = ", ".join(f"'{name}'" for name in PROJECT_FIELDS)

# -- changes to the index ------------------------------------------------------------

# Shared by the writing scripts (those of releases and project_status too).
# KEYS[1..3]: serial, projects, project hash; ARGV[1..5]: canonical name,
# display name, creation time, change id, channel. The first display name
# and creation time stay; the serial is formatted by string.format so that
# it is never written as 1e+14.
CHANGE = """
local function change()
  local serial = string.format('%d', redis.call('INCR', KEYS[1]))
  if redis.call('EXISTS', KEYS[3]) == 0 then
    redis.call('HSET', KEYS[3], 'display_name', ARGV[2], 'created', ARGV[3], 'info', '{}')
  end
  redis.call('HSET', KEYS[3], 'serial', serial, 'change', ARGV[4])
  redis.call('ZADD', KEYS[2], serial, ARGV[1])
  return serial
end
local function announce(serial)
  redis.call('PUBLISH', ARGV[5], serial .. ' ' .. ARGV[4] .. ' ' .. ARGV[1])
end
"""

# The global serial, and the name and last change id of every project
# changed after a serial, proxied ones whose cooldown exceptions changed
# included. KEYS[1..4]: serial, projects, cooldown:changes, cooldown:change;
# ARGV[1]: the serial; ARGV[2]: the project hash key prefix.
CHANGED_SINCE = """
local changed = {}
for i, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')) do
  changed[i] = {name, redis.call('HGET', ARGV[2] .. name, 'change')}
end
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[1], '+inf')) do
  changed[#changed + 1] = {name, redis.call('HGET', KEYS[4], name)}
end
return {redis.call('GET', KEYS[1]) or '0', changed}
"""

# Read scripts, for a consistent snapshot in one round trip.
# KEYS[1]: projects; ARGV[1]: the project hash key prefix.
LIST_PROJECTS = """
local projects = {}
for i, name in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  projects[i] = {name, unpack(redis.call('HMGET', ARGV[1] .. name, FIELDS))}
end
return projects
""".replace("FIELDS", FIELDS)

# KEYS[1..2]: order, files.
LIST_FILES = """
local records = {}
for i, filename in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  records[i] = redis.call('HGET', KEYS[2], filename)
end
return records
"""


# KEYS: files hashes of several projects. Every record in them, in no order.
FILE_RECORDS = """
local records = {}
for _, key in ipairs(KEYS) do
  for _, record in ipairs(redis.call('HVALS', key)) do records[#records + 1] = record end
end
return records
"""

# KEYS[1..4]: the change keys, files; ARGV[1..5]: the change arguments;
# ARGV[6]: '1' to yank, '0' to un-yank; ARGV[7]: the reason; ARGV[8..]:
# filenames. Only ``yanked`` changes in each record (cjson keeps the rest:
# records hold strings, numbers and nulls only). Fires with the filenames
# that changed.
SET_YANKED = (
    CHANGE
    + """
local wanted = cjson.null
if ARGV[6] == '1' then wanted = ARGV[7] end
local changed = {}
for i = 8, #ARGV do
  local record = redis.call('HGET', KEYS[4], ARGV[i])
  if record then
    local file = cjson.decode(record)
    if file.yanked ~= wanted then
      file.yanked = wanted
      redis.call('HSET', KEYS[4], ARGV[i], cjson.encode(file))
      changed[#changed + 1] = ARGV[i]
    end
  end
end
if #changed > 0 then announce(change()) end
return changed
"""
)

# KEYS[4..7]: files, order, metadata, tombstones; ARGV[6..]: filenames.
# Fires with the removed records.
DELETE_FILES = (
    CHANGE
    + """
local removed = {}
for i = 6, #ARGV do
  local record = redis.call('HGET', KEYS[4], ARGV[i])
  if record then
    redis.call('HDEL', KEYS[4], ARGV[i])
    redis.call('HDEL', KEYS[6], ARGV[i])
    redis.call('LREM', KEYS[5], 0, ARGV[i])
    redis.call('HSET', KEYS[7], ARGV[i], cjson.decode(record).sha256)
    removed[#removed + 1] = record
  end
end
if #removed > 0 then announce(change()) end
return removed
"""
)

# -- users, tokens and roles (not part of the index: no serials) ---------------------

# KEYS[1]: users; ARGV[1..2]: name, password hash.
SET_PASSWORD = """
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
local user = cjson.decode(record)
user.password_hash = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(user))
return 1
"""

# KEYS[1..4]: users, tokens, the user's roles, the user's teams; ARGV[1]:
# name; ARGV[2..3]: the project roles and team members key prefixes. The
# user's tokens go too, and so do their roles and memberships (.teams).
REMOVE_USER = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local tokens = redis.call('HGETALL', KEYS[2])
for i = 1, #tokens, 2 do
  if cjson.decode(tokens[i + 1]).username == ARGV[1] then
    redis.call('HDEL', KEYS[2], tokens[i])
  end
end
for _, project in ipairs(redis.call('HKEYS', KEYS[3])) do
  redis.call('HDEL', ARGV[2] .. project, ARGV[1])
end
for _, team in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  redis.call('SREM', ARGV[3] .. team, ARGV[1])
end
redis.call('DEL', KEYS[3], KEYS[4])
return 1
"""

# KEYS[1..2]: users, tokens; ARGV[1..3]: user name, token id, token JSON.
ADD_TOKEN = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# KEYS[1..2]: the project's roles, the user's roles; ARGV[1..3]: project,
# user, role ('' to remove). Both hashes always say the same.
SET_ROLE = """
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
return 1
"""

# As SET_ROLE, ARGV[1..2]: project, user; makes the user owner if nobody has
# a role yet. Fires with the project's roles.
CLAIM_PROJECT = """
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], ARGV[2], 'owner')
  redis.call('HSET', KEYS[2], ARGV[1], 'owner')
end
return redis.call('HGETALL', KEYS[1])
"""

# -- leases ----------------------------------------------------------------------------

# KEYS[1]: the lease; ARGV[1..2]: holder, milliseconds. Extends the lease
# only while ARGV[1] still holds it.
RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1]: the lease; ARGV[1]: holder. Drops the lease only if ARGV[1]
# holds it (an expired one may be another's now).
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# -- the index of proxied files (ministry.stores.redis.cache_index) ------------------

# The cache scripts share KEYS[1..4]: cache:sizes (hash key -> bytes),
# cache:lru (zset of held, unpinned keys -> last use in milliseconds),
# cache:pinned (set), cache:total (string: the bytes of the lru's keys).
# Each keeps total equal to the sum of the sizes of the lru's members.
_CACHE_ADD = """
local function add(key, size, used)
  local old = tonumber(redis.call('HGET', KEYS[1], key) or '0')
  redis.call('HSET', KEYS[1], key, size)
  if redis.call('SISMEMBER', KEYS[3], key) == 0 then
    redis.call('ZADD', KEYS[2], used, key)
    redis.call('INCRBY', KEYS[4], tonumber(size) - old)
  end
end
"""

# ARGV[1..3]: key, size, last use. Fires with the total.
CACHE_ADD = (
    _CACHE_ADD
    + """
add(ARGV[1], ARGV[2], ARGV[3])
return tonumber(redis.call('GET', KEYS[4]) or '0')
"""
)

# ARGV: (key, size, last use) triples; keys already held are left alone.
CACHE_SEED = (
    _CACHE_ADD
    + """
for i = 1, #ARGV, 3 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then add(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
end
return 1
"""
)

# KEYS[1]: lru; ARGV[1..2]: key, last use. Only later, only for a member.
CACHE_TOUCH = """
local used = redis.call('ZSCORE', KEYS[1], ARGV[1])
if used and tonumber(used) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
return 1
"""

# KEYS[1..2]: lru, sizes; ARGV[1]: how many. {key, last use, size} oldest first.
CACHE_OLDEST = """
local found = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local oldest = {}
for i = 1, #found, 2 do
  oldest[#oldest + 1] = {found[i], found[i + 1], redis.call('HGET', KEYS[2], found[i])}
end
return oldest
"""

# ARGV[1..2]: key, the last use it must still have ('' for any). 1 if removed.
CACHE_REMOVE = """
local size = redis.call('HGET', KEYS[1], ARGV[1])
if not size then return 0 end
if ARGV[2] ~= '' then
  local used = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if not used or tonumber(used) ~= tonumber(ARGV[2]) then return 0 end
end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then redis.call('DECRBY', KEYS[4], size) end
return 1
"""

# ARGV[1]: key. Out of the lru (and the total) if it was in it, pinned for good.
CACHE_PIN = """
redis.call('SADD', KEYS[3], ARGV[1])
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('DECRBY', KEYS[4], redis.call('HGET', KEYS[1], ARGV[1]))
end
return 1
"""

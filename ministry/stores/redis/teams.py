"""The Redis store's teams: who is in which, kept both ways by one script per change.

Kept apart from ``store.py``, which is at its size limit; :class:`Teams` is a
base of :class:`~ministry.stores.redis.store.RedisStore`. Keys, under the
store's prefix::

    {p}teams               hash    team name -> created (format_time)
    {p}team:{name}         set     its members' user names
    {p}user-teams:{user}   set     the teams a user is in (the same memberships)

A team's roles are ordinary roles held by ``@team`` (``roles:{project}`` and
``user-roles:@team``, see :mod:`~ministry.stores.redis.scripts`), so removing
a team removes them in the same script. ``REMOVE_USER`` takes a user out of
every team. Teams are not part of the index: nothing is announced.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred

from ministry.core.models import TeamRecord, format_time, parse_time
from ministry.core.teams import holder

# KEYS[1..2]: teams, the team's members; ARGV[1..3]: name, created, the
# user-teams key prefix; ARGV[4..]: its members.
ADD_TEAM = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
for i = 4, #ARGV do
  redis.call('SADD', KEYS[2], ARGV[i])
  redis.call('SADD', ARGV[3] .. ARGV[i], ARGV[1])
end
return 1
"""

# KEYS[1..3]: teams, the team's members, the team's roles by project;
# ARGV[1..4]: name, the user-teams key prefix, the project roles key prefix,
# the team's holder name ('@name').
REMOVE_TEAM = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
for _, user in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('SREM', ARGV[2] .. user, ARGV[1])
end
redis.call('DEL', KEYS[2])
for _, project in ipairs(redis.call('HKEYS', KEYS[3])) do
  redis.call('HDEL', ARGV[3] .. project, ARGV[4])
end
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS[1..3]: teams, the team's members, the user's teams; ARGV[1..3]: team,
# user, '1' to add or '0' to remove.
SET_MEMBER = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[2], ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[1])
else
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('SREM', KEYS[3], ARGV[1])
end
return 1
"""

# KEYS[1]: teams; ARGV[1]: the team key prefix. Fires with {name, created, members}s.
LIST_TEAMS = """
local teams = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #teams, 2 do
  out[#out + 1] = {teams[i], teams[i + 1], redis.call('SMEMBERS', ARGV[1] .. teams[i])}
end
return out
"""


class _Store(Protocol):
    """What of the store this uses."""

    def _key(self, *parts: str) -> str: ...

    def _command(self, *args: Any) -> Deferred[Any]: ...

    def _script(self, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]: ...


class Teams:
    """The team methods of ``IMetadataStore``."""

    def add_team(self: _Store, team: TeamRecord) -> Deferred[bool]:
        keys = [self._key("teams"), self._key("team", team.name)]
        args = [team.name, format_time(team.created), self._key("user-teams:"), *team.members]
        d = self._script(ADD_TEAM, keys, args)
        return d.addCallback(lambda added: int(added) == 1)

    def remove_team(self: _Store, name: str) -> Deferred[bool]:
        team = holder(name)
        keys = [self._key("teams"), self._key("team", name), self._key("user-roles", team)]
        args = [name, self._key("user-teams:"), self._key("roles:"), team]
        d = self._script(REMOVE_TEAM, keys, args)
        return d.addCallback(lambda removed: int(removed) == 1)

    def list_teams(self: _Store) -> Deferred[list[TeamRecord]]:
        d = self._script(LIST_TEAMS, [self._key("teams")], [self._key("team:")])
        return d.addCallback(_team_records)

    def set_member(self: _Store, name: str, username: str, member: bool) -> Deferred[bool]:
        keys = [self._key("teams"), self._key("team", name), self._key("user-teams", username)]
        d = self._script(SET_MEMBER, keys, [name, username, "1" if member else "0"])
        return d.addCallback(lambda changed: int(changed) == 1)

    def user_teams(self: _Store, username: str) -> Deferred[frozenset[str]]:
        d = self._command("SMEMBERS", self._key("user-teams", username))
        return d.addCallback(lambda teams: frozenset(team.decode() for team in teams))


def _team_records(reply: list[list[Any]]) -> list[TeamRecord]:
    teams = [
        TeamRecord(
            name.decode(),
            tuple(sorted(member.decode() for member in members)),
            parse_time(created.decode()),
        )
        for name, created, members in reply
    ]
    return sorted(teams, key=lambda team: team.name)

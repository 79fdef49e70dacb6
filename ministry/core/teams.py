"""Teams: named groups of users that hold roles in projects together.

A team holds a role the way a user does, in the same roles mapping of a
project, under the name ``@team``. User names cannot start with '@'
(``core.auth.check_username``), so a holder is a user or a team at a glance,
and both stores keep team roles with no change to how roles are stored. What
a user may do in a project is the best role among their own and their
teams' (:func:`role_of`); teams are looked up on every request, so removing
a member takes their access away at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from ministry.core.models import MAINTAINER, OWNER

#: What a role holder's name starts with when it is a team.
TEAM_PREFIX = "@"


def holder(team: str) -> str:
    """The name a team holds roles under: ``@team``."""
    return TEAM_PREFIX + team


def team_of(name: str) -> str | None:
    """The team a role holder names, or None when it names a user."""
    return name[len(TEAM_PREFIX) :] if name.startswith(TEAM_PREFIX) else None


def has_teams(roles: Mapping[str, str]) -> bool:
    """Whether any of a project's roles is held by a team (else teams need no look-up)."""
    return any(team_of(name) is not None for name in roles)


def role_of(username: str, teams: Iterable[str], roles: Mapping[str, str]) -> str | None:
    """The best role ``username`` has in a project: their own, or one of their teams'.

    OWNER beats MAINTAINER; None when neither they nor any of their teams
    holds one.
    """
    held = {roles.get(username), *(roles.get(holder(team)) for team in teams)}
    for role in (OWNER, MAINTAINER):
        if role in held:
            return role
    return None


class Person(NamedTuple):
    """A role holder as a project page lists it."""

    name: str  # a user name, or a team's name without its '@'
    role: str
    team: bool


def people(roles: Mapping[str, str]) -> tuple[Person, ...]:
    """A project's roles for its page: owners first, then maintainers, each by name."""
    listed = [
        Person(team or name, role, team is not None)
        for name, role in roles.items()
        for team in (team_of(name),)
    ]
    return tuple(sorted(listed, key=lambda person: (person.role != OWNER, person.name)))

"""Teams and their members, in SQL (``ministry.core.teams`` says what a team is).

Each function takes the connection first and runs on the store's one worker
thread, as ``accounts`` does. A team's roles are rows of ``roles`` held by
``@team``, so removing a team removes them in the same transaction as its
memberships: a team of the same name made later starts with nothing.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict

from ministry.core.models import TeamRecord, format_time, parse_time
from ministry.core.teams import holder
from ministry.stores.sqlite.schema import transaction


def add_team(conn: sqlite3.Connection, team: TeamRecord) -> bool:
    with transaction(conn):
        cursor = conn.execute(
            "INSERT OR IGNORE INTO teams (name, created) VALUES (?, ?)",
            (team.name, format_time(team.created)),
        )
        if cursor.rowcount != 1:
            return False
        conn.executemany(
            "INSERT INTO team_members (team, username) VALUES (?, ?)",
            [(team.name, member) for member in team.members],
        )
    return True


def remove_team(conn: sqlite3.Connection, name: str) -> bool:
    with transaction(conn):
        conn.execute("DELETE FROM team_members WHERE team = ?", (name,))
        if conn.execute("DELETE FROM teams WHERE name = ?", (name,)).rowcount == 0:
            return False
        conn.execute("DELETE FROM roles WHERE username = ?", (holder(name),))
    return True


def list_teams(conn: sqlite3.Connection) -> list[TeamRecord]:
    members: defaultdict[str, list[str]] = defaultdict(list)
    for team, username in conn.execute(
        "SELECT team, username FROM team_members ORDER BY team, username"
    ):
        members[team].append(username)
    rows = conn.execute("SELECT name, created FROM teams ORDER BY name")
    return [TeamRecord(name, tuple(members[name]), parse_time(created)) for name, created in rows]


def set_member(conn: sqlite3.Connection, name: str, username: str, member: bool) -> bool:
    with transaction(conn):
        if conn.execute("SELECT 1 FROM teams WHERE name = ?", (name,)).fetchone() is None:
            return False
        if member:
            conn.execute(
                "INSERT OR IGNORE INTO team_members (team, username) VALUES (?, ?)",
                (name, username),
            )
        else:
            conn.execute(
                "DELETE FROM team_members WHERE team = ? AND username = ?", (name, username)
            )
    return True


def user_teams(conn: sqlite3.Connection, username: str) -> frozenset[str]:
    rows = conn.execute("SELECT team FROM team_members WHERE username = ?", (username,))
    return frozenset(team for (team,) in rows)

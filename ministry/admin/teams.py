"""``team add|delete|add-member|remove-member|list``: named groups of users.

A team holds roles in projects as ``@team`` (``project add-owner demo @devs``),
and each of its members has that role (``ministry.core.teams``). The daemon
reads memberships on every upload, so a member removed here loses access at
once. Every change is in the audit log under ``@team``; a deleted team's
roles are taken away with it, each also in its project's audit log. As for
users, deleting a team that is the only owner of projects needs ``--force``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ministry.admin.releases import cli_actor
from ministry.admin.users import refuse_orphaning, role_holder
from ministry.config import Settings
from ministry.core import audit
from ministry.core.auth import check_team_name
from ministry.core.models import TeamRecord, utcnow
from ministry.core.teams import holder, team_of
from ministry.curation import Curator
from ministry.interfaces import IBlobStore, IMetadataStore


async def team_command(
    args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore, settings: Settings
) -> None:
    """One ``team`` action; each change leaves an audit entry under ``@team``."""
    if args.action == "list":
        await _list(store)
        return
    name = check_team_name(args.name)
    curator = Curator(store, blobs)
    if args.action == "add":
        if not await store.add_team(TeamRecord(name, (), utcnow())):
            raise SystemExit(f"ministry-admin: team {name} exists already")
        await curator.record(cli_actor(), audit.TEAM, holder(name), detail="created")
        print(f"Added team {name}: give it roles with 'project add-owner PROJECT @{name}'")
    elif args.action == "delete":
        await _delete(store, curator, name, args.force)
    else:
        member = args.action == "add-member"
        username = await role_holder(args.user, store, settings, member)
        if team_of(username) is not None:
            raise SystemExit("ministry-admin: a team's members are users, not teams")
        if not await store.set_member(name, username, member):
            raise SystemExit(f"ministry-admin: no team {name}")
        detail = f"{username} {'added' if member else 'removed'}"
        await curator.record(cli_actor(), audit.TEAM, holder(name), detail=detail)
        print(f"{username} is {'now' if member else 'no longer'} a member of {name}")


async def _list(store: IMetadataStore) -> None:
    """One line a team: its name, its members, and the roles it holds."""
    teams = await store.list_teams()
    for team in teams:
        roles = await store.user_roles(holder(team.name))
        held = ", ".join(f"{project} ({role})" for project, role in sorted(roles.items()))
        print(f"@{team.name}\t{', '.join(team.members) or '-'}\t{held or '-'}")
    if not teams:
        print("No teams.")


async def _delete(store: IMetadataStore, curator: Curator, name: str, force: bool) -> None:
    """Remove a team and its roles, unless that leaves projects without an owner."""
    team = holder(name)
    await refuse_orphaning(store, team, force)
    roles = await store.user_roles(team)  # read before they go, for the audit and the report
    if not await store.remove_team(name):
        raise SystemExit(f"ministry-admin: no team {name}")
    actor = cli_actor()
    await curator.record(actor, audit.TEAM, team, detail="deleted")
    for project in sorted(roles):
        await curator.record_role(actor, project, team, None, "team deleted")
    print(
        f"Deleted team {name}" + (f" and its roles in {', '.join(sorted(roles))}" if roles else "")
    )


def add_team_command(commands: Any) -> None:
    """The ``team`` subcommand's parser."""
    team = commands.add_parser(
        "team", help="teams: named groups of users that hold roles as @NAME"
    ).add_subparsers(dest="action", required=True)
    team.add_parser("add", help="make a team (no members yet)").add_argument("name")
    delete = team.add_parser("delete", help="remove a team, its memberships and its roles")
    delete.add_argument("name")
    delete.add_argument("--force", action="store_true", help="even if the only owner of projects")
    for action, what in (("add-member", "add a user to"), ("remove-member", "remove a user from")):
        command = team.add_parser(action, help=f"{what} a team")
        command.add_argument("name")
        command.add_argument("user")
    team.add_parser("list", help="teams, their members and their roles")

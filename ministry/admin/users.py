"""``user``, ``token`` and ``project``: who may log in, and who may publish what.

Users and tokens live in the store, so the daemon sees them (once its
short-lived memory of successful logins expires) without a restart. Roles
may name users of the ``htpasswd`` file too, and teams as ``@team``
(``ministry.admin.teams``). A token's scope is ``upload`` (whatever its user
may do) or ``read`` (installing only, for CI jobs). Removing a user refuses to
leave a project without an owner unless forced: its next uploader would
claim it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from twisted.internet.threads import deferToThread

from ministry.admin.releases import cli_actor, status_command
from ministry.config import Settings
from ministry.core.auth import (
    check_team_name,
    check_username,
    hash_password,
    new_token,
    parse_htpasswd,
)
from ministry.core.models import MAINTAINER, OWNER, READ_SCOPE, TokenRecord, UserRecord, utcnow
from ministry.core.names import check_project_name
from ministry.core.teams import holder, team_of
from ministry.curation import Curator
from ministry.interfaces import IBlobStore, IMetadataStore


def read_password(args: argparse.Namespace) -> str:
    """The new password, before the reactor starts: a line of stdin, or a prompt twice."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            raise SystemExit("ministry-admin: the passwords differ")
    if not password:
        raise SystemExit("ministry-admin: the password must not be empty")
    return password


async def user_command(args: argparse.Namespace, store: IMetadataStore, *_: Any) -> None:
    """``user add|passwd|remove|list``; for add and passwd, ``args.password`` is set."""
    if args.action == "list":
        for user in await store.list_users():
            roles = await store.user_roles(user.name)
            owned = ", ".join(f"{name} ({role})" for name, role in sorted(roles.items()))
            print(f"{user.name}{' (admin)' if user.admin else ''}\t{owned or '-'}")
        return
    name = check_username(args.name)
    if args.action == "remove":
        await refuse_orphaning(store, name, args.force)
        _done(await store.remove_user(name), f"Removed {name}", f"no user {name}")
        return
    password_hash = await deferToThread(hash_password, args.password)
    if args.action == "add":
        user = UserRecord(name, password_hash, args.admin, utcnow())
        _done(await store.add_user(user), f"Added {name}", f"{name} exists already")
    else:
        changed = await store.set_password(name, password_hash)
        _done(changed, f"Changed the password of {name}", f"no user {name}")


async def refuse_orphaning(store: IMetadataStore, name: str, force: bool) -> None:
    """Refuse to leave projects without owners (a user's or a team's going would)."""
    orphans = []
    for project, role in sorted((await store.user_roles(name)).items()):
        owners = [u for u, r in (await store.get_roles(project)).items() if r == OWNER]
        if role == OWNER and owners == [name]:
            orphans.append(project)
    if orphans and not force:
        raise SystemExit(
            f"ministry-admin: {name} is the only owner of {', '.join(orphans)}; add another "
            "owner first (project add-owner), or use --force to leave them without one, "
            "for their next uploader to claim."
        )


async def token_command(args: argparse.Namespace, store: IMetadataStore, *_: Any) -> None:
    """``token create|revoke|list``: a new token's secret goes to stdout, once."""
    if args.action == "list":
        for token in await store.list_tokens(args.user):
            projects = ", ".join(token.projects) or "all projects"
            when = f"{token.created:%Y-%m-%d %H:%M}"
            print(f"{token.id}\t{token.username}\t{projects}\t{when}\t{token.scope}")
    elif args.action == "revoke":
        _done(await store.revoke_token(args.id), f"Revoked {args.id}", f"no token {args.id}")
    else:
        if args.scope == READ_SCOPE and args.project:
            raise SystemExit(
                "ministry-admin: a read token reads the whole index (as its user may); "
                "--project limits uploading, so it does not go with --scope read"
            )
        projects = tuple(dict.fromkeys(check_project_name(name) for name in args.project))
        made = new_token()
        token = TokenRecord(made.id, args.user, made.digest, projects, utcnow(), args.scope)
        if not await store.add_token(token):
            raise SystemExit(
                f"ministry-admin: no user {args.user} (tokens are for users added here)"
            )
        what = "installing only" if args.scope == READ_SCOPE else ", ".join(projects)
        print(
            f"Token {made.id} for {args.user}, for {what or 'all their projects'}."
            " It is shown only this once: use it as the password of the user __token__.",
            file=sys.stderr,
        )
        print(made.text)


async def project_command(
    args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore, settings: Settings
) -> None:
    """``project owners|add-owner|add-maintainer|remove-role|status``."""
    name = check_project_name(args.name)
    if args.action == "status":
        await status_command(name, args, store, blobs)
        return
    if args.action == "owners":
        roles = await store.get_roles(name)
        for username, role in sorted(roles.items(), key=lambda item: (item[1] != OWNER, item[0])):
            print(f"{role}\t{username}")
        if not roles:
            print(f"{name} has no owner yet: its next uploader becomes its owner.")
        return
    username = await role_holder(args.user, store, settings, args.action != "remove-role")
    curator = Curator(store, blobs)
    if args.action == "remove-role":
        changed = await curator.set_role(name, username, None, cli_actor())
        print(f"{username} has no role in {name} {'now' if changed else 'already'}")
        return
    role = OWNER if args.action == "add-owner" else MAINTAINER
    changed = await curator.set_role(name, username, role, cli_actor())
    print(f"{username} is {'now' if changed else 'already'} {role} of {name}")


async def role_holder(name: str, store: IMetadataStore, settings: Settings, exists: bool) -> str:
    """``name`` as roles hold it: a user, or ``@team`` (``ministry.core.teams``).

    With ``exists``, the user (of the store or the htpasswd file) or the team
    must exist: a role for nobody would be a typo kept for good.
    """
    if team_of(name) is not None:
        team = check_team_name(name)
        if exists and team not in {found.name for found in await store.list_teams()}:
            raise SystemExit(f"ministry-admin: no team {team} (add it with 'team add {team}')")
        return holder(team)
    username = check_username(name)
    unknown = exists and await store.get_user(username) is None
    if unknown and username not in _htpasswd_users(settings):
        raise SystemExit(f"ministry-admin: no user {username}")
    return username


def _htpasswd_users(settings: Settings) -> set[str]:
    if not settings.htpasswd:
        return set()
    with open(settings.htpasswd, encoding="utf-8") as handle:
        return set(parse_htpasswd(handle.read()).entries)


def _done(succeeded: bool, message: str, failure: str) -> None:
    if not succeeded:
        raise SystemExit(f"ministry-admin: {failure}")
    print(message)

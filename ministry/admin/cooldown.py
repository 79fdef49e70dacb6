"""``cooldown allow SPEC --reason TEXT``, ``cooldown revoke SPEC``, ``cooldown list [PROJECT]``.

SPEC is ``NAME`` (every version) or ``NAME==VERSION`` (one release). The
changes go through :class:`ministry.curation.Curator`, so they are audited
as the HTTP API's would be; ``list`` prints one exception a line,
tab-separated (what, who, when, why).
"""

from __future__ import annotations

import argparse
from typing import Any

from ministry.admin.releases import cli_actor
from ministry.config import Settings
from ministry.core.cooldown import CooldownException
from ministry.core.models import format_time
from ministry.core.names import check_project_name
from ministry.curation import Curator
from ministry.interfaces import IBlobStore, IMetadataStore


async def cooldown_command(
    args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore, settings: Settings
) -> None:
    curator = Curator(store, blobs)
    if args.action == "allow":
        exception = await curator.allow_cooldown(args.spec, args.reason, cli_actor())
        print(f"Cooldown waived for {exception.spec}: {exception.reason}")
        for note in await _notes(exception, store, settings):
            print(f"Note: {note}")
    elif args.action == "revoke":
        await curator.revoke_cooldown(args.spec, cli_actor())
        print(f"Cooldown exception for {args.spec.strip()} revoked")
    else:
        project = check_project_name(args.project) if args.project else None
        exceptions = await store.cooldown_exceptions(project)
        for item in exceptions:
            print("\t".join((item.spec, item.by, format_time(item.at), item.reason)))
        if not exceptions:
            print("No cooldown exceptions.")


async def _notes(
    exception: CooldownException, store: IMetadataStore, settings: Settings
) -> list[str]:
    """What would make the new exception change nothing, said at once rather than found later."""
    notes = []
    if settings.upstream_min_age <= 0:
        notes.append("no --upstream-min-age is set, so nothing is held back now")
    if await store.get_project(exception.project) is not None:
        notes.append(
            f"{exception.project} is hosted here; the cooldown applies to proxied files only"
        )
    return notes


def add_cooldown_command(commands: Any) -> None:
    cooldown = commands.add_parser(
        "cooldown", help="exceptions to --upstream-min-age, for a project or one release"
    )
    actions = cooldown.add_subparsers(dest="action", required=True)
    allow = actions.add_parser("allow", help="offer NAME or NAME==VERSION before its time")
    allow.add_argument("spec", metavar="NAME[==VERSION]")
    allow.add_argument("--reason", required=True, help="why; kept in the audit log")
    revoke = actions.add_parser("revoke", help="withdraw an exception")
    revoke.add_argument("spec", metavar="NAME[==VERSION]")
    actions.add_parser("list", help="the exceptions, by project").add_argument("project", nargs="?")

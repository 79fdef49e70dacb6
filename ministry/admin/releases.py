"""``yank``, ``unyank`` and ``delete``: a release (``PROJECT VERSION``) or a file (``--file``);
and ``project status NAME [STATUS] [--reason TEXT]``, a project's PEP 792 status.

They go through :class:`ministry.curation.Curator`, as the HTTP API does, so
both refuse and report the same things.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from ministry.core.audit import Actor
from ministry.core.errors import NotFound
from ministry.core.names import check_project_name
from ministry.core.project_status import describe
from ministry.curation import Curator, Target
from ministry.interfaces import IBlobStore, IMetadataStore


def cli_actor() -> Actor:
    """``ministry-admin (<os user>)``: who ran the command, for the audit log."""
    return Actor.cli(getpass.getuser())


async def curate_command(
    args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore, *_: Any
) -> None:
    """One of the three, by ``args.command``; prints the filenames it acted on."""
    target = Target.of(check_project_name(args.project), args.version, args.file)
    curator = Curator(store, blobs)
    if args.command == "yank":
        files = [record.filename for record in await curator.select(target)]
        await curator.yank(target, cli_actor(), args.reason)
        print(f"Yanked {target}: {', '.join(files)}")
    elif args.command == "unyank":
        files = [record.filename for record in await curator.select(target)]
        await curator.unyank(target, cli_actor())
        print(f"Un-yanked {target}: {', '.join(files)}")
    else:
        print(f"Deleted {target}: {', '.join(await curator.delete(target, cli_actor()))}")


async def status_command(
    name: str, args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore
) -> None:
    """Set the status (and reason) when given one, then print it: ``demo is archived (why)``."""
    if args.status is None:
        if args.reason is not None:
            raise SystemExit("ministry-admin: --reason goes with a status to set")
        project = await store.get_project(name)
        if project is None:
            raise NotFound(f"No such project hosted here: {name}.")
    else:
        project = await Curator(store, blobs).set_status(
            name, args.status, args.reason, cli_actor()
        )
    print(describe(project))

"""``yank``, ``unyank`` and ``delete``: a release (``PROJECT VERSION``) or a file (``--file``).

They go through :class:`ministry.curation.Curator`, as the HTTP API does, so
both refuse and report the same things.
"""

from __future__ import annotations

import argparse
from typing import Any

from ministry.core.names import check_project_name
from ministry.curation import Curator, Target
from ministry.interfaces import IBlobStore, IMetadataStore


async def curate_command(
    args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore, *_: Any
) -> None:
    """One of the three, by ``args.command``; prints the filenames it acted on."""
    target = Target.of(check_project_name(args.project), args.version, args.file)
    curator = Curator(store, blobs)
    if args.command == "yank":
        files = [record.filename for record in await curator.select(target)]
        await curator.yank(target, args.reason)
        print(f"Yanked {target}: {', '.join(files)}")
    elif args.command == "unyank":
        files = [record.filename for record in await curator.select(target)]
        await curator.unyank(target)
        print(f"Un-yanked {target}: {', '.join(files)}")
    else:
        print(f"Deleted {target}: {', '.join(await curator.delete(target))}")

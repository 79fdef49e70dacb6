"""``cache drop PROJECT``: a proxied project's upstream page is asked for again, now.

A running daemon keeps what it fetched from the upstream until
``--upstream-ttl`` runs out: a release published upstream a minute ago is
not listed yet. This announces a change of the project through the
metadata store (``IMetadataStore.refresh_upstream``), so every daemon on
the store, on every host, drops its pages of the project and revalidates
the upstream page at the next request, whatever its age. Nothing is
deleted: the cached files stay (their bytes are checked and immutable),
and the saved page stays as the fallback if the upstream fails meanwhile.
"""

from __future__ import annotations

import argparse
from typing import Any

from ministry.config import Settings
from ministry.core.errors import BadRequest
from ministry.core.names import check_project_name
from ministry.interfaces import IBlobStore, IMetadataStore


async def cache_command(
    args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore, settings: Settings
) -> None:
    name = check_project_name(args.project)
    if await store.get_project(name) is not None:
        raise BadRequest(
            f"{name} is hosted here: its pages change when it does, and it is never "
            "fetched from the upstream"
        )
    await store.refresh_upstream(name)
    print(
        f"{name}: every ministry on this store asks the upstream again at its next request "
        "(within a second or so)"
    )


def add_cache_command(commands: Any) -> None:
    cache = commands.add_parser("cache", help="what the proxy fetched from the upstream")
    actions = cache.add_subparsers(dest="action", required=True)
    drop = actions.add_parser(
        "drop", help="ask the upstream again for a project now, whatever --upstream-ttl says"
    )
    drop.add_argument("project")

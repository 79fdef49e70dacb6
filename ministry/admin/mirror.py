"""``mirror run``: one pass of the config file's ``[mirror]`` table, in the foreground.

The same run the daemon's timer makes (:func:`ministry.mirror.service.run_in_foreground`),
through the same upstream settings, with a progress bar on stderr; it exits
1 if any project failed, so it can be scripted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from twisted.internet.defer import maybeDeferred

from ministry.backends import build_storage, build_upstream
from ministry.config import ConfigError, Settings, load_mirror
from ministry.interfaces import IMetadataStore
from ministry.mirror.service import run_in_foreground


async def mirror_command(
    args: argparse.Namespace, store: IMetadataStore, _: Any, settings: Settings
) -> None:
    """``mirror run``: one pass of the ``[mirror]`` table, in the foreground."""
    try:
        config = load_mirror(args.config)
    except ConfigError as exc:
        raise SystemExit(f"ministry-admin: {exc}") from None
    if config is None:
        raise SystemExit("ministry-admin: no [mirror] table in the config file (--config)")
    from twisted.internet import reactor  # ``react`` runs it

    data_dir = os.path.abspath(settings.data_dir)
    storage = build_storage(settings, data_dir, reactor)
    for service in storage.services:
        await maybeDeferred(service.startService)
    proxy = build_upstream(
        settings,
        data_dir,
        reactor,
        storage.upstream,
        store.cache_index(),
        store.cooldown_exceptions,
    )
    try:
        status = await run_in_foreground(proxy, config, store, sys.stderr)
    except ValueError as exc:
        raise SystemExit(f"ministry-admin: {exc}") from None
    finally:
        for service in reversed(storage.services):
            await maybeDeferred(service.stopService)
    for project, error in status.errors:
        print(f"error: {project}: {error}", file=sys.stderr)
    if status.errors:
        raise SystemExit(1)

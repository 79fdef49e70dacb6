"""``twistd ministry``: the command-line options and the service they build.

``Options`` is generated from ``ministry.config.SETTINGS``; it only collects
strings. All checking happens in ``load_settings``, shared with the config
file, and a bad value ends start-up with one line naming the option.
``makeService`` only wires objects together: nothing connects, listens or
touches the disk until the MultiService starts.
"""

from __future__ import annotations

import os
import sys

from twisted.application import strports
from twisted.application.service import IService, MultiService
from twisted.python import usage

from ministry.config import SETTINGS, ConfigError, Settings, load_settings
from ministry.stores.blobs import FilesystemBlobStore
from ministry.stores.redis import RedisStore
from ministry.stores.sqlite import SQLiteStore
from ministry.web.app import build_site


class Options(usage.Options):
    """Options for ``twistd ministry``; ``--config FILE.toml`` holds the same keys."""

    synopsis = "[options]"
    longdesc = (
        "Run MinistryOfPackages, a private Python package index. Every option can also "
        "be set in the TOML file named by --config (same names); the command line wins."
    )
    optParameters = [
        [setting.name, setting.short, None, f"{setting.help} [default: {setting.default}]"]
        for setting in SETTINGS
    ] + [["config", "c", None, "A TOML file with any of these settings."]]

    settings: Settings

    def postOptions(self) -> None:
        given = {
            setting.name: self[setting.name]
            for setting in SETTINGS
            if self[setting.name] is not None
        }
        try:
            self.settings = load_settings(given, self["config"])
        except ConfigError as exc:
            # One line, not the whole usage text: the message names the option.
            raise SystemExit(f"ministry: {exc}") from None


def makeService(options: Options) -> IService:
    """Wire the store, the blob storage and the web server into one MultiService."""
    settings = options.settings
    service = MultiService()
    service.setName("ministry")
    data_dir = os.path.abspath(settings.data_dir)
    store = make_store(settings, data_dir)
    store.setName("store")
    store.setServiceParent(service)
    blobs = FilesystemBlobStore(os.path.join(data_dir, "files"))
    site = build_site(settings, store, blobs)
    web = strports.service(settings.port, site)
    web.setName("web")
    web.setServiceParent(service)
    return service


def make_store(settings: Settings, data_dir: str) -> SQLiteStore | RedisStore:
    """The metadata store the settings ask for: Redis if named, else embedded."""
    if settings.redis:
        return RedisStore(settings.redis, settings.redis_prefix)
    return SQLiteStore(os.path.join(data_dir, "ministry.sqlite3"))


def main_options(argv: list[str] | None = None) -> Options:
    """Parse options the way twistd would (for ``ministry.tac`` and tools)."""
    options = Options()
    options.parseOptions(sys.argv[1:] if argv is None else argv)
    return options

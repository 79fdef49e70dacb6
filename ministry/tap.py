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
from collections.abc import Callable

from twisted.application import strports
from twisted.application.service import IService, MultiService
from twisted.python import usage

from ministry.catalog.readmes import ReadmeWorker
from ministry.config import SETTINGS, ConfigError, Setting, Settings, load_mirror, load_settings
from ministry.core.mirror_plan import MirrorConfig
from ministry.integrity import BlobCollector
from ministry.mirror import MirrorService
from ministry.stores.blobs import FilesystemBlobStore
from ministry.stores.redis import RedisStore
from ministry.stores.sqlite import SQLiteStore
from ministry.web.app import build_site
from ministry.web.auth import Authenticator
from ministry.web.proxy import make_proxy


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
        if not setting.flag and not setting.multiple
    ] + [["config", "c", None, "A TOML file with any of these settings."]]
    optFlags = [[setting.name, setting.short, setting.help] for setting in SETTINGS if setting.flag]
    # Repeatable settings get an ``opt_<name>`` method each, added below the class.

    settings: Settings
    mirror: MirrorConfig | None = None

    def postOptions(self) -> None:
        given = {}
        for setting in SETTINGS:
            value = self.opts.get(setting.name)
            # A flag not given is 0 and a repeatable option never given is
            # absent; neither may hide the config file's value.
            if value is not None and (value or not (setting.flag or setting.multiple)):
                given[setting.name] = value
        try:
            self.settings = load_settings(given, self["config"])
            self.mirror = load_mirror(self["config"])
        except ConfigError as exc:
            # One line, not the whole usage text: the message names the option.
            raise SystemExit(f"ministry: {exc}") from None
        if self.mirror is not None and (not self.settings.upstream or self.settings.offline):
            raise SystemExit(
                "ministry: the [mirror] table needs an upstream: set upstream "
                "(--upstream URL), and not offline"
            )


def _collector(setting: Setting) -> Callable[[Options, str], None]:
    """The ``opt_`` method of a repeatable setting: each use adds one value."""

    def collect(self: Options, value: str) -> None:
        self.opts.setdefault(setting.name, []).append(value)

    collect.__doc__ = f"{setting.help} [repeatable]"
    return collect


for _setting in SETTINGS:
    if _setting.multiple:
        setattr(Options, f"opt_{_setting.attribute}", _collector(_setting))


def makeService(options: Options) -> IService:
    """Wire the store, the blob storage, the proxy and the web server into one MultiService."""
    settings = options.settings
    service = MultiService()
    service.setName("ministry")
    data_dir = os.path.abspath(settings.data_dir)
    store = make_store(settings, data_dir)
    store.setName("store")
    store.setServiceParent(service)
    blobs = FilesystemBlobStore(os.path.join(data_dir, "files"))
    collector = BlobCollector(store, blobs)  # the uploads' root only, never the upstream cache
    collector.setName("collector")
    collector.setServiceParent(service)  # after the store: stopped before it
    proxy = make_proxy(settings, data_dir)
    if proxy is not None:
        proxy.client.setServiceParent(service)
        proxy.setServiceParent(service)
    auth = Authenticator.from_settings(settings, store)
    auth.setName("auth")
    auth.setServiceParent(service)  # after the store: it logs who may upload
    mirror = None
    if options.mirror is not None and proxy is not None:
        mirror = MirrorService(options.mirror, proxy, store)
        mirror.setName("mirror")
    readme_worker = ReadmeWorker()
    readme_worker.setName("readmes")
    readme_worker.setServiceParent(service)
    site = build_site(settings, store, blobs, proxy, auth, mirror, readme_worker)
    web = strports.service(settings.port, site)
    web.setName("web")
    web.setServiceParent(service)
    if mirror is not None:  # last: stopped first, so its run ends before the proxy stops
        mirror.setServiceParent(service)
    return service


def make_store(settings: Settings, data_dir: str) -> SQLiteStore | RedisStore:
    """The metadata store the settings ask for: Redis if named, else embedded."""
    if settings.redis:
        return RedisStore(settings.redis, settings.redis_prefix, settings.redis_timeout)
    return SQLiteStore(os.path.join(data_dir, "ministry.sqlite3"))


def main_options(argv: list[str] | None = None) -> Options:
    """Parse options the way twistd would (for ``ministry.tac`` and tools)."""
    options = Options()
    options.parseOptions(sys.argv[1:] if argv is None else argv)
    return options

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
from dataclasses import dataclass

from twisted.application.service import IService
from twisted.internet.interfaces import IReactorTime
from twisted.python import usage

from ministry.backends import BlobStorage, build_storage, build_upstream, make_store
from ministry.catalog.cache import PageCache
from ministry.catalog.readmes import Readmes, ReadmeWorker
from ministry.catalog.views import Catalog
from ministry.config import SETTINGS, ConfigError, Setting, Settings, load_mirror, load_settings
from ministry.core.mirror_config import MirrorConfig
from ministry.curation import Curator
from ministry.integrity import BlobCollector
from ministry.interfaces import IBlobStore, IMetadataStore
from ministry.lifecycle import OrderedMultiService
from ministry.mirror.service import MirrorService
from ministry.startup_checks import listening, prepare_data_dir
from ministry.stores.redis import RedisStore
from ministry.stores.sqlite import SQLiteStore
from ministry.stores.timed import TimedStore
from ministry.upstream.pages import UpstreamPages
from ministry.web.api import CurationApi
from ministry.web.app import Components, build_site
from ministry.web.audit_page import AuditPage
from ministry.web.auth import Authenticator
from ministry.web.front import Front
from ministry.web.http.site import IndexSite
from ministry.web.integrity_api import IntegrityApi
from ministry.web.jsonapi import JsonApi
from ministry.web.listing import DirectoryListing
from ministry.web.metrics import Metrics
from ministry.web.mirror_status import MirrorStatusPage
from ministry.web.packages import PackagesTree
from ministry.web.pages import README_HEADING_OFFSET, ProjectPages
from ministry.web.saved_index import SavedIndex
from ministry.web.search import ProjectList
from ministry.web.simple import SimpleIndex
from ministry.web.status import Status, StorageHealth
from ministry.web.upload import Uploads
from ministry.web.urls import Urls


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
        prepare_data_dir(self.settings.data_dir)
        on_s3 = (self.settings.storage or "").startswith("s3:")
        if self.settings.storage_redirect and not on_s3:
            raise SystemExit("ministry: --storage-redirect needs --storage s3://...")
        if self.settings.x_accel_redirect and on_s3:
            raise SystemExit(
                "ministry: --x-accel-redirect serves files from a directory; "
                "with --storage s3://..., use --storage-redirect"
            )
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
    """The daemon: every object of :func:`build_index`, and the web server, in one MultiService."""
    from twisted.internet import reactor  # installed by twistd before makeService

    index = build_index(options.settings, reactor, options.mirror)
    service = OrderedMultiService()
    service.setName("ministry")
    web = listening(options.settings.port, index.site)
    web.setName("web")
    # Started in this order, stopped in the reverse, each after the one above
    # it has stopped: storage and the store first up and last down; the
    # mirror last up, so its run ends before the proxy and storage stop.
    mirror = () if index.mirror is None else (index.mirror,)
    for child in (*index.services, web, *mirror):
        child.setServiceParent(service)
    return service


@dataclass(frozen=True)
class Index:
    """Every object of one index, built and wired for its settings; nothing started.

    ``services`` are those to start, in order (the web server and the mirror
    are not among them: ``makeService`` adds them after).
    """

    store: SQLiteStore | RedisStore
    blobs: IBlobStore
    auth: Authenticator
    readme_worker: ReadmeWorker
    site: IndexSite
    proxy: UpstreamPages | None
    mirror: MirrorService | None
    services: tuple[IService, ...]


def build_index(
    settings: Settings, reactor: IReactorTime, mirror_config: MirrorConfig | None = None
) -> Index:
    """Build every object the settings ask for, once, for the daemon and the tests alike.

    ``reactor`` is the one clock they all get (it also connects the upstream
    client and spawns the README renderer). The web side reads through a
    timed store (its calls are in ``/metrics``); ``/health``, the collector
    and the mirror use the store itself.
    """
    data_dir = os.path.abspath(settings.data_dir)
    store = make_store(settings, data_dir, reactor)
    store.setName("store")
    storage = build_storage(settings, data_dir, reactor)
    blobs = storage.uploads
    collector = BlobCollector(store, blobs, reactor)  # the uploads' root, never the upstream's
    collector.setName("collector")
    proxy = build_upstream(
        settings,
        data_dir,
        reactor,
        storage.upstream,
        store.cache_index(),
        store.cooldown_exceptions,
    )
    mirror = None
    if mirror_config is not None and proxy is not None:
        mirror = MirrorService(mirror_config, proxy, store, clock=reactor)
        mirror.setName("mirror")
    cache = PageCache(settings.page_cache_size, reactor.seconds)
    metrics = Metrics(cache)
    if proxy is not None:
        metrics.watch_upstream(proxy.stats)
    if mirror is not None:
        metrics.watch_mirror(lambda: mirror.status)
    timed = TimedStore(store, metrics.timed)
    auth = Authenticator.from_settings(settings, timed, reactor)
    auth.setName("auth")
    readme_worker = ReadmeWorker(reactor)
    readme_worker.setName("readmes")
    # Not with an upstream: its index lists cached projects that carry no serial.
    saved = None if proxy is not None else SavedIndex(os.path.join(data_dir, "pages"), cache)
    web = _Backends(
        store, timed, storage, cache, metrics, auth, proxy, mirror, readme_worker, saved, reactor
    )
    site = build_site(settings, build_components(settings, web), auth, metrics, blobs)
    upstream = () if proxy is None else (proxy.client, proxy)
    # The collector after the store (stopped before it); the authenticator
    # after it too: at start-up it logs who may upload.
    services = (*storage.services, store, collector, *upstream, auth, readme_worker)
    if saved is not None:
        saved.setName("saved-index")
        services += (saved,)
    return Index(store, blobs, auth, readme_worker, site, proxy, mirror, services)


@dataclass(frozen=True)
class _Backends:
    """What the web components are built on."""

    store: IMetadataStore
    timed: IMetadataStore
    storage: BlobStorage
    cache: PageCache
    metrics: Metrics
    auth: Authenticator
    proxy: UpstreamPages | None
    mirror: MirrorService | None
    readme_worker: ReadmeWorker
    saved_index: SavedIndex | None
    clock: IReactorTime


def build_components(settings: Settings, web: _Backends) -> Components:
    """The web components, each given what it reads and nothing more."""
    catalog = Catalog(web.timed, web.cache, web.proxy)
    urls = Urls(settings.base_url)
    readmes = Readmes(web.cache, web.readme_worker, README_HEADING_OFFSET)
    blobs = web.storage.uploads
    tree = PackagesTree(catalog, blobs, web.storage.delivery, web.auth)
    curator = Curator(web.timed, blobs)
    return Components(
        simple=SimpleIndex(catalog, urls, web.saved_index),
        packages=DirectoryListing(tree, "/packages/", web.cache),
        json_api=JsonApi(catalog, urls),
        pages=ProjectPages(catalog, urls, readmes),
        projects=ProjectList(catalog),
        status=Status(
            web.store,
            StorageHealth(blobs, web.clock),
            web.cache,
            web.metrics,
            web.auth,
            web.proxy,
            web.mirror,
        ),
        mirror=MirrorStatusPage(web.mirror),
        curation=CurationApi(web.auth, curator),
        uploads=Uploads(
            web.timed, blobs, settings.max_upload_size, web.metrics, web.auth, curator, readmes
        ),
        integrity=IntegrityApi(catalog, blobs),
        audit=AuditPage(web.auth, web.timed),
        front=Front(catalog, urls),
    )


def main_options(argv: list[str] | None = None) -> Options:
    """Parse options the way twistd would (for ``ministry.tac`` and tools)."""
    options = Options()
    options.parseOptions(sys.argv[1:] if argv is None else argv)
    return options

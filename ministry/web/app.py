"""Builds the Site: every web component wired to the stores it reads."""

from __future__ import annotations

from ministry.catalog.cache import PageCache
from ministry.catalog.readmes import Readmes, ReadmeWorker
from ministry.catalog.views import Catalog
from ministry.config import Settings
from ministry.curation import Curator
from ministry.interfaces import IBlobStore, IMetadataStore
from ministry.mirror import MirrorService
from ministry.stores.timed import TimedStore
from ministry.web.api import CurationApi
from ministry.web.auth import Authenticator
from ministry.web.front import Front
from ministry.web.http.connections import ConnectionLimits
from ministry.web.http.files import Delivery
from ministry.web.http.form import FormLimits
from ministry.web.http.site import IndexSite
from ministry.web.jsonapi import JsonApi
from ministry.web.listing import DirectoryListing
from ministry.web.metrics import Metrics
from ministry.web.mirror_status import MirrorStatusPage
from ministry.web.packages import PackagesTree
from ministry.web.pages import README_HEADING_OFFSET, ProjectPages
from ministry.web.proxy import ProxyCatalog
from ministry.web.root import Root
from ministry.web.search import ProjectList
from ministry.web.simple import SimpleIndex
from ministry.web.static import StaticFiles
from ministry.web.status import Status
from ministry.web.upload import Uploads
from ministry.web.urls import Urls


def build_site(
    settings: Settings,
    store: IMetadataStore,
    blobs: IBlobStore,
    proxy: ProxyCatalog | None = None,
    auth: Authenticator | None = None,
    mirror: MirrorService | None = None,
    readme_worker: ReadmeWorker | None = None,
) -> IndexSite:
    """The Site for these settings; nothing here does I/O.

    ``proxy`` (from ``ministry.web.proxy.make_proxy``) serves the names the
    store does not hold from the upstream indexes. ``auth`` is made from the
    settings unless given (``makeService`` gives it, to start it as a service).
    ``mirror`` (the service of a ``[mirror]`` table) is shown at ``/mirror/``.
    ``readme_worker`` renders READMEs; give it to stop its child process with
    the service (one made here starts its child on the first README all the same).
    """
    cache = PageCache(settings.page_cache_size)
    metrics = Metrics(cache, proxy, mirror)
    probed = store  # /health asks the store itself, untimed
    store = TimedStore(store, metrics.timed)
    catalog = Catalog(store, cache, proxy)
    urls = Urls(settings.base_url)
    readmes = Readmes(cache, readme_worker or ReadmeWorker(), README_HEADING_OFFSET)
    tree = PackagesTree(catalog, blobs, Delivery.from_settings(settings))
    packages = DirectoryListing(tree, "/packages/", cache)
    auth = auth or Authenticator.from_settings(settings, store)
    status = Status(probed, blobs, cache, metrics, auth, proxy, mirror).app.resource()
    curator = Curator(store, blobs)
    simple_tree = SimpleIndex(catalog, urls).resource()
    packages_tree = packages.resource()
    root = Root(
        trees={
            b"simple": simple_tree,
            b"packages": packages_tree,
            b"pypi": JsonApi(catalog, urls).app.resource(),
            b"project": ProjectPages(catalog, urls, readmes).app.resource(),
            b"projects": ProjectList(catalog).app.resource(),
            b"static": StaticFiles(),
        },
        routes={
            b"health": status,
            b"metrics": status,
            b"mirror": MirrorStatusPage(mirror).app.resource(),
            b"api": CurationApi(auth, curator).app.resource(),
        },
        uploads=Uploads(
            store, blobs, settings.max_upload_size, metrics, auth, curator, readmes
        ).app.resource(),
        front=Front(catalog, urls).app.resource(),
    )
    # The body cap leaves room for the form's text fields around the file.
    max_body = settings.max_upload_size + FormLimits().max_fields_total
    site = IndexSite(
        root,
        max_body,
        blobs.staging_path,
        metrics,
        auth.read_guard,
        settings.access_log,
        ConnectionLimits.from_settings(settings),
        auth.uploads_need_credentials,
    )
    if not auth.private:  # a private index checks credentials on every read
        lane = site.use_fast_lane(
            {b"simple": simple_tree.lookup, b"packages": packages_tree.lookup}
        )
        metrics.watch_fast_lane(lane)
    return site

"""Builds the Site: every web component wired to the stores it reads."""

from __future__ import annotations

from ministry.config import Settings
from ministry.interfaces import IBlobStore, IMetadataStore
from ministry.stores.timed import TimedStore
from ministry.web.cache import PageCache
from ministry.web.catalog import Catalog
from ministry.web.form import FormLimits
from ministry.web.front import Front
from ministry.web.jsonapi import JsonApi
from ministry.web.listing import DirectoryListing
from ministry.web.metrics import Metrics
from ministry.web.packages import PackagesTree
from ministry.web.root import Root
from ministry.web.simple import SimpleIndex
from ministry.web.site import IndexSite
from ministry.web.status import Status
from ministry.web.upload import Uploads
from ministry.web.urls import Urls


def build_site(settings: Settings, store: IMetadataStore, blobs: IBlobStore) -> IndexSite:
    """The Site for these settings; nothing here does I/O."""
    cache = PageCache()
    metrics = Metrics(cache)
    status = Status(store, blobs, cache, metrics).app.resource()
    store = TimedStore(store, metrics.timed)
    catalog = Catalog(store, cache)
    urls = Urls(settings.base_url)
    packages = DirectoryListing(PackagesTree(catalog, blobs), "/packages/", cache)
    root = Root(
        trees={
            b"simple": SimpleIndex(catalog, urls).app.resource(),
            b"packages": packages.app.resource(),
            b"pypi": JsonApi(catalog, urls).app.resource(),
        },
        routes={b"health": status, b"metrics": status},
        uploads=Uploads(store, blobs, settings.max_upload_size, metrics).app.resource(),
        front=Front(catalog, urls.root).app.resource(),
    )
    # The body cap leaves room for the form's text fields around the file.
    max_body = settings.max_upload_size + FormLimits().max_fields_total
    return IndexSite(root, max_body, blobs.staging_path, metrics)

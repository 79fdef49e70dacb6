"""What the settings ask for below the web: the metadata store, the blob stores, the upstream.

Shared by the daemon (:mod:`ministry.tap` wires these into its services
and its web resource) and by ``ministry-admin``, which opens the same
store, storage and upstream side on the same settings, and should not pay
for importing the web layer at every command (half of its start-up).
Like ``makeService``, nothing here connects, listens or touches the disk:
the services returned do when they start.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from twisted.application.service import IService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.web.iweb import IAgent

from ministry.config import Settings
from ministry.core.cooldown import CooldownException
from ministry.core.storage_url import FileStorage, parse_storage_url
from ministry.interfaces import IBlobStore
from ministry.interfaces.cache_index import ICacheIndex
from ministry.mirror.service import PARALLEL, WORKERS
from ministry.stores.blobs import FilesystemBlobStore
from ministry.stores.redis import RedisStore
from ministry.stores.sqlite import SQLiteStore
from ministry.upstream.cache import FileCache
from ministry.upstream.client import UpstreamClient
from ministry.upstream.downloads import Downloads
from ministry.upstream.pages import UpstreamPages
from ministry.upstream.pool import pooled_agent
from ministry.upstream.saved_pages import SavedPages
from ministry.web.http.files import Delivery, DiskDelivery


def build_upstream(
    settings: Settings,
    data_dir: str,
    reactor: IReactorTime,
    blobs: IBlobStore,
    index: ICacheIndex,
    exceptions: Callable[[str], Deferred[list[CooldownException]]],
    agent: IAgent | None = None,
) -> UpstreamPages | None:
    """The proxy's upstream side the settings ask for, or None (no upstream, not offline).

    Returns the pages service (named "proxy"); its client (named "upstream")
    is ``.client``, its file cache and downloads ``.cache`` and ``.downloads``.
    The cache keeps its bytes in ``blobs`` (``BlobStorage.upstream``, never
    the uploads' store) and says what it holds in ``index`` (the metadata
    store's ``cache_index()``, shared as widely as the store); the cooldown
    exceptions come from ``exceptions`` (the store's ``cooldown_exceptions``). ``reactor``
    is the clock of all of them. Without ``agent`` (tests give an in-memory
    one) the client connects through an Agent on ``reactor`` with a
    connection pool of its own, closed when the client stops.
    """
    if not settings.upstream and not settings.offline:
        return None
    pool = None
    if agent is None:
        # Idle connections kept per upstream host: as many as a mirror run has
        # requests in flight (its downloads and its page workers), so that none
        # of them is closed after its request and opened again for the next.
        idle = PARALLEL + WORKERS
        agent, pool = pooled_agent(reactor, timeout=settings.upstream_timeout, per_host=idle)
    client = UpstreamClient(
        settings.upstream,
        settings.upstream_timeout,
        deadline=settings.upstream_deadline,
        min_rate=settings.upstream_min_rate,
        agent=agent,
        clock=reactor,
        pool=pool,
        redirect_hosts=settings.upstream_redirect_host,
    )
    client.setName("upstream")
    cache = FileCache(blobs, index, max_size=settings.cache_max_size, clock=reactor)
    proxy = UpstreamPages(
        client,
        SavedPages(os.path.join(data_dir, "upstream", "pages")),
        cache,
        Downloads(client, cache, offline=settings.offline),
        ttl=settings.upstream_ttl,
        min_age=settings.upstream_min_age,
        offline=settings.offline,
        clock=reactor,
        policy=settings.name_policy(),
        exceptions=exceptions,
    )
    proxy.setName("proxy")
    return proxy


@dataclass(frozen=True)
class BlobStorage:
    """The blob stores ``--storage`` asks for, and how their files leave.

    Uploads and proxied files are kept apart (another directory, another
    key prefix), so that cache eviction can never touch an upload.
    ``services`` (thread pools, connection pools) start before the store's
    users and stop after them.
    """

    uploads: IBlobStore
    upstream: IBlobStore
    delivery: Delivery
    services: tuple[IService, ...] = ()


def build_storage(settings: Settings, data_dir: str, reactor: IReactorTime) -> BlobStorage:
    """``file:DIR`` (default ``<data-dir>/files``) or ``s3://BUCKET/PREFIX?endpoint=...``."""
    storage = parse_storage_url(settings.storage or f"file:{os.path.join(data_dir, 'files')}")
    if isinstance(storage, FileStorage):
        # Proxied files in upstream/files beside the uploads' directory (by
        # default both under the data directory): where the uploads are
        # shared, so are they, as the cache index that says what is held.
        uploads = os.path.abspath(storage.directory)
        beside = os.path.dirname(uploads)
        return BlobStorage(
            FilesystemBlobStore(uploads),
            FilesystemBlobStore(os.path.join(beside, "upstream", "files"), refetchable=True),
            DiskDelivery(settings.x_accel_redirect, beside),
        )
    # Imported here: boto3 takes a noticeable part of a second to import, which
    # a daemon on a directory (the default) should not pay at every start.
    from ministry.stores.s3 import S3BlobStore
    from ministry.web.http.objects import ObjectDelivery

    # Only transient staging under the data directory: every byte kept is in the bucket.
    staging = os.path.join(data_dir, "staging")
    uploads = S3BlobStore(storage.below("files"), staging)
    uploads.setName("storage")
    upstream = S3BlobStore(storage.below("upstream"), staging)
    upstream.setName("upstream-storage")
    delivery = ObjectDelivery.for_reactor(reactor, redirect=settings.storage_redirect)
    return BlobStorage(uploads, upstream, delivery, (uploads, upstream, delivery))


def make_store(
    settings: Settings, data_dir: str, clock: IReactorTime | None = None
) -> SQLiteStore | RedisStore:
    """The metadata store the settings ask for: Redis if named, else embedded.

    ``clock`` times out Redis calls and paces SQLite's polls (default: the
    reactor running when the store starts, for ``ministry-admin``).
    """
    if settings.redis:
        return RedisStore(
            settings.redis, settings.redis_prefix, settings.redis_timeout, clock=clock
        )
    return SQLiteStore(os.path.join(data_dir, "ministry.sqlite3"), clock=clock)

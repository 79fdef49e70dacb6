"""``/health`` and ``/metrics``: how the daemon is doing, for people and probes.

``/health`` answers 200 when the store and the file storage both work, 503
otherwise, with a JSON body saying which part failed and why, so a load
balancer can take a process out and a person can see the reason. On a
``--private`` index it stays open to probes, which carry no credentials,
but says only ``{"status": "ok"}`` or ``"unavailable"`` to a request without
valid ones: the details (paths, serial, upstreams, mirror errors) are for
people who may read the index. Upstream URLs are shown with their
credentials hidden, whoever asks.
"""

from __future__ import annotations

import json
from typing import Any

from klein import Klein
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.web.iweb import IRequest

from ministry.catalog.cache import PageCache
from ministry.core.errors import MinistryError, StorageUnavailable, StoreUnavailable
from ministry.interfaces import IBlobStore, IMetadataStore
from ministry.mirror.service import MirrorService
from ministry.upstream.pages import UpstreamPages
from ministry.web.auth import Authenticator
from ministry.web.metrics import Metrics


class Status:
    """The operational endpoints."""

    app = Klein()

    def __init__(
        self,
        store: IMetadataStore,
        blobs: IBlobStore,
        cache: PageCache,
        metrics: Metrics,
        auth: Authenticator,
        proxy: UpstreamPages | None = None,
        mirror: MirrorService | None = None,
    ) -> None:
        self.auth = auth
        self.store = store
        self.blobs = blobs
        self.cache = cache
        self.metrics = metrics
        self.proxy = proxy
        self.mirror = mirror

    @app.route("/health", methods=["GET", "HEAD"])
    async def health(self, request: IRequest) -> bytes:
        store, storage = await self._store_health(), await self._storage_health()
        healthy = store["ok"] and storage["ok"]
        request.setResponseCode(200 if healthy else 503)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        report: dict[str, Any] = {"status": "ok" if healthy else "unavailable"}
        if await self._may_see_details(request):
            report.update(self._details(store, storage))
        return json.dumps(report, indent=2).encode() + b"\n"

    async def _may_see_details(self, request: IRequest) -> bool:
        """Anyone on an open index; on a private one, whoever may read it."""
        if not self.auth.private:
            return True
        try:
            return await self.auth.authenticate(request) is not None
        except MinistryError:  # wrong credentials, or the store cannot check them
            return False

    def _details(self, store: dict[str, Any], storage: dict[str, Any]) -> dict[str, Any]:
        report: dict[str, Any] = {
            "store": store,
            "storage": storage,
            "page_cache": {
                "entries": len(self.cache),
                "bytes": self.cache.bytes,
                "max_bytes": self.cache.max_bytes,
                "hits": self.cache.hits,
                "misses": self.cache.misses,
            },
        }
        if self.proxy is not None:
            report["upstream"] = self.proxy.stats()
        if self.mirror is not None:  # informative: a failed run does not make us unhealthy
            report["mirror"] = self.mirror.status.to_dict()
        return report

    async def _store_health(self) -> dict[str, Any]:
        backend = type(self.store).__name__
        try:
            serial = await self.store.last_serial()
        except StoreUnavailable as exc:
            return {"ok": False, "backend": backend, "error": exc.message}
        return {"ok": True, "backend": backend, "serial": serial}

    async def _storage_health(self) -> dict[str, Any]:
        location = self.blobs.location
        try:
            await self.blobs.probe()
        except StorageUnavailable as exc:
            return {"ok": False, "location": location, "error": exc.message}
        return {"ok": True, "location": location}

    @app.route("/metrics", methods=["GET"])
    def metrics_page(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self.metrics.registry)

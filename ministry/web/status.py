"""``/health`` and ``/metrics``: how the daemon is doing, for people and probes.

``/health`` answers 200 when the store and the file storage both work, 503
otherwise, with a JSON body saying which part failed and why, so a load
balancer can take a process out and a person can see the reason.
"""

from __future__ import annotations

import json
import os
from typing import Any

from klein import Klein
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.internet.threads import deferToThread
from twisted.web.iweb import IRequest

from ministry.core.errors import StoreUnavailable
from ministry.interfaces import IBlobStore, IMetadataStore
from ministry.mirror import MirrorService
from ministry.web.cache import PageCache
from ministry.web.metrics import Metrics
from ministry.web.proxy import ProxyCatalog


def _probe_storage(root: str) -> None:
    """Create, write, fsync and remove a file where uploads are staged."""
    staging = os.path.join(root, ".staging")
    os.makedirs(staging, exist_ok=True)
    path = os.path.join(staging, f"health-{os.getpid()}.probe")
    with open(path, "wb") as probe:
        probe.write(b"ok")
        probe.flush()
        os.fsync(probe.fileno())
    os.unlink(path)


class Status:
    """The operational endpoints."""

    app = Klein()

    def __init__(
        self,
        store: IMetadataStore,
        blobs: IBlobStore,
        cache: PageCache,
        metrics: Metrics,
        proxy: ProxyCatalog | None = None,
        mirror: MirrorService | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.cache = cache
        self.metrics = metrics
        self.proxy = proxy
        self.mirror = mirror

    @app.route("/health", methods=["GET", "HEAD"])
    async def health(self, request: IRequest) -> bytes:
        report: dict[str, Any] = {
            "store": await self._store_health(),
            "storage": await self._storage_health(),
            "page_cache": {
                "entries": len(self.cache),
                "hits": self.cache.hits,
                "misses": self.cache.misses,
            },
        }
        if self.proxy is not None:
            report["upstream"] = self.proxy.stats()
        if self.mirror is not None:  # informative: a failed run does not make us unhealthy
            report["mirror"] = self.mirror.status.to_dict()
        healthy = report["store"]["ok"] and report["storage"]["ok"]
        report["status"] = "ok" if healthy else "unavailable"
        request.setResponseCode(200 if healthy else 503)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(report, indent=2).encode() + b"\n"

    async def _store_health(self) -> dict[str, Any]:
        backend = type(self.store).__name__
        try:
            serial = await self.store.last_serial()
        except StoreUnavailable as exc:
            return {"ok": False, "backend": backend, "error": exc.message}
        return {"ok": True, "backend": backend, "serial": serial}

    async def _storage_health(self) -> dict[str, Any]:
        try:
            await deferToThread(_probe_storage, self.blobs.root)
        except OSError as exc:
            return {"ok": False, "path": self.blobs.root, "error": str(exc)}
        return {"ok": True, "path": self.blobs.root}

    @app.route("/metrics", methods=["GET"])
    def metrics_page(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self.metrics.registry)

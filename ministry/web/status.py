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
from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from ministry import __version__
from ministry.catalog.cache import PageCache
from ministry.core.errors import MinistryError, StorageUnavailable, StoreUnavailable
from ministry.interfaces import IBlobStore, IMetadataStore
from ministry.mirror.service import MirrorService
from ministry.upstream.pages import UpstreamPages
from ministry.web.auth import Authenticator
from ministry.web.metrics import Metrics

log = Logger()


class StorageHealth:
    """The file storage's part of ``/health``: one probe at a time, its answer kept briefly.

    A probe writes and removes a small object (a file, or a request to the
    bucket, on the same bounded pool that uploads use), and load balancers
    poll every daemon every few seconds: so concurrent asks share one probe,
    its answer serves for ``keep`` seconds, and a probe stuck behind busy
    uploads or a silent bucket is a failure after ``timeout`` seconds, not a
    ``/health`` that hangs.
    """

    def __init__(
        self, blobs: IBlobStore, clock: IReactorTime, keep: float = 5.0, timeout: float = 10.0
    ) -> None:
        self.blobs = blobs
        self.clock = clock
        self.keep = keep
        self.timeout = timeout
        self._last: tuple[float, dict[str, Any]] | None = None
        self._waiting: list[Deferred[dict[str, Any]]] = []

    def report(self) -> Deferred[dict[str, Any]]:
        """``{"ok", "location"[, "error"]}``, probed now unless a fresh answer is kept."""
        if self._last is not None and self.clock.seconds() - self._last[0] < self.keep:
            return succeed(self._last[1])
        waiter: Deferred[dict[str, Any]] = Deferred()
        self._waiting.append(waiter)
        if len(self._waiting) == 1:
            probe = self.blobs.probe()
            probe.addTimeout(self.timeout, self.clock)
            probe.addBoth(self._answer)
        return waiter

    def _answer(self, result: object) -> None:
        report: dict[str, Any] = {"ok": True, "location": self.blobs.location}
        if isinstance(result, Failure):
            report["ok"] = False
            if result.check(StorageUnavailable):
                report["error"] = result.value.message
            elif result.check(defer.TimeoutError):
                report["error"] = f"no answer from the storage within {self.timeout:g} s"
            else:
                log.failure("The storage probe failed", result)
                report["error"] = f"the probe failed: {result.getErrorMessage()}"
        self._last = (self.clock.seconds(), report)
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(report)


class Status:
    """The operational endpoints."""

    app = Klein()

    def __init__(
        self,
        store: IMetadataStore,
        storage: StorageHealth,
        cache: PageCache,
        metrics: Metrics,
        auth: Authenticator,
        proxy: UpstreamPages | None = None,
        mirror: MirrorService | None = None,
    ) -> None:
        self.auth = auth
        self.store = store
        self.storage = storage
        self.cache = cache
        self.metrics = metrics
        self.proxy = proxy
        self.mirror = mirror

    @app.route("/health", methods=["GET", "HEAD"])
    async def health(self, request: IRequest) -> bytes:
        store, storage = await self._store_health(), await self.storage.report()
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
            "version": __version__,
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

    @app.route("/metrics", methods=["GET"])
    def metrics_page(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self.metrics.registry)

"""Prometheus metrics of one Site, in a registry of its own.

A registry per Site (not prometheus_client's global one) lets tests build
several sites in one process. Request counts and latencies are recorded when
twisted.web logs a finished request, so every response is counted once,
whichever component answered it, errors and 304s included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ministry.web.cache import PageCache

#: First path segments reported as themselves; anything else is "other",
#: so a scan of random URLs cannot grow the label set without bound.
ROUTES = frozenset({"", "simple", "packages", "pypi", "legacy", "dist", "health", "metrics"})


class _CacheCollector(Collector):
    """Reads the page cache's counters when scraped (no work per request)."""

    def __init__(self, cache: PageCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        hits = CounterMetricFamily("ministry_page_cache_hits", "Page cache hits.")
        hits.add_metric([], self.cache.hits)
        misses = CounterMetricFamily("ministry_page_cache_misses", "Page cache misses.")
        misses.add_metric([], self.cache.misses)
        size = GaugeMetricFamily("ministry_page_cache_entries", "Entries in the page cache.")
        size.add_metric([], len(self.cache))
        yield from (hits, misses, size)


class Metrics:
    """The counters and histograms the web layer updates."""

    def __init__(self, cache: PageCache) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ministry_http_requests",
            "HTTP requests answered, by first path segment, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ministry_http_request_duration_seconds",
            "Time from the request's headers to its last byte, by first path segment.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "ministry_upload_bytes", "Bytes of distribution files stored.", registry=self.registry
        )
        self.store_latency = Histogram(
            "ministry_store_call_duration_seconds",
            "Time of metadata store calls, by method.",
            ["call"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
            registry=self.registry,
        )
        self.registry.register(_CacheCollector(cache))

    def request_done(self, path: bytes, method: bytes, status: int, seconds: float) -> None:
        segment = path.split(b"/", 2)[1].decode("latin-1") if path.startswith(b"/") else ""
        route = segment if segment in ROUTES else "other"
        self.requests.labels(route, method.decode("latin-1"), str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def timed(self, call: str) -> Callable[[float], None]:
        """A function recording one store call's duration under ``call``."""
        return self.store_latency.labels(call).observe

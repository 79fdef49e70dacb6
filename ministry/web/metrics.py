"""Prometheus metrics of one Site, in a registry of its own.

A registry per Site (not prometheus_client's global one) lets tests build
several sites in one process. Request counts and latencies are recorded when
twisted.web logs a finished request, so every response is counted once,
whichever component answered it, errors and 304s included.

The upstream's and the mirror's figures are read through the functions
given to :meth:`Metrics.watch_upstream` and :meth:`Metrics.watch_mirror`
(``ministry.tap`` wires them), so metrics know neither service's type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ministry.catalog.cache import PageCache
from ministry.web.http.fastlane import FastLane

#: First path segments reported as themselves; anything else is "other",
#: so a scan of random URLs cannot grow the label set without bound.
ROUTES = frozenset(
    {"", "simple", "packages", "pypi", "legacy", "dist", "health", "metrics", "mirror"}
)
#: Methods counted by name; any other token a client sends is counted as
#: "other", so clients cannot grow the number of series without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
        weight = GaugeMetricFamily("ministry_page_cache_bytes", "Bytes held by the page cache.")
        weight.add_metric([], self.cache.bytes)
        yield from (hits, misses, size, weight)


class _FastLaneCollector(Collector):
    """How many requests the fast lane answered (they are in the request counts too)."""

    def __init__(self, lane: FastLane) -> None:
        self.lane = lane

    def collect(self) -> Iterator[CounterMetricFamily]:
        answered = CounterMetricFamily(
            "ministry_fast_lane_answers",
            "Requests answered from memory before twisted.web parsed them.",
        )
        answered.add_metric([], self.lane.answered)
        yield answered


class _ProxyCollector(Collector):
    """The upstream cache's size and hits, read from the proxy's ``stats()`` when scraped."""

    def __init__(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.stats()
        size = GaugeMetricFamily("ministry_upstream_cache_bytes", "Bytes of cached upstream files.")
        size.add_metric([], stats["cache_bytes"])
        files = GaugeMetricFamily("ministry_upstream_cache_files", "Cached upstream files.")
        files.add_metric([], stats["cached_files"])
        hits = CounterMetricFamily(
            "ministry_upstream_file_hits", "Upstream file downloads served from the cache."
        )
        hits.add_metric([], stats["file_hits"])
        misses = CounterMetricFamily(
            "ministry_upstream_file_misses", "Upstream file downloads fetched from upstream."
        )
        misses.add_metric([], stats["file_misses"])
        errors = CounterMetricFamily("ministry_upstream_errors", "Failed upstream requests.")
        errors.add_metric([], stats["upstream_errors"])
        stale = CounterMetricFamily(
            "ministry_upstream_stale_pages_served",
            "Stale upstream pages served (held files only): the upstream failed or lagged.",
        )
        stale.add_metric([], stats["stale_pages_served"])
        failing = GaugeMetricFamily(
            "ministry_upstream_failing", "1 while the last upstream page request failed."
        )
        failing.add_metric([], int(stats["failing"]))
        yield from (size, files, hits, misses, errors, stale, failing)


class _MirrorCollector(Collector):
    """The scheduled mirror's progress and totals, read from its status when scraped."""

    def __init__(self, status: Callable[[], Any]) -> None:
        self.status = status

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        status = self.status()
        gauges = (
            ("ministry_mirror_running", "1 while a mirror run is going on.", int(status.running)),
            (
                "ministry_mirror_projects_planned",
                "Projects in the current or last run.",
                status.projects_total,
            ),
            (
                "ministry_mirror_projects_done",
                "Projects done in the current or last run.",
                status.projects_done,
            ),
            (
                "ministry_mirror_run_errors",
                "Errors of the current or last run.",
                len(status.errors),
            ),
            (
                "ministry_mirror_last_success_timestamp_seconds",
                "When the last run without errors ended (0: never).",
                status.last_success or 0,
            ),
        )
        for name, text, value in gauges:
            gauge = GaugeMetricFamily(name, text)
            gauge.add_metric([], value)
            yield gauge
        counters = (
            (
                "ministry_mirror_files_fetched",
                "Files the mirror fetched.",
                status.files_fetched_total,
            ),
            (
                "ministry_mirror_bytes_fetched",
                "Bytes the mirror fetched.",
                status.bytes_fetched_total,
            ),
            ("ministry_mirror_errors", "Errors the mirror met.", status.errors_total),
            ("ministry_mirror_runs", "Mirror runs started.", status.runs),
        )
        for name, text, value in counters:
            counter = CounterMetricFamily(name, text)
            counter.add_metric([], value)
            yield counter


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
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.registry.register(_CacheCollector(cache))

    def request_done(self, path: bytes, method: bytes, status: int, seconds: float) -> None:
        segment = path.split(b"/", 2)[1].decode("latin-1") if path.startswith(b"/") else ""
        route = segment if segment in ROUTES else "other"
        name = method.decode("latin-1")
        key = (route, name if name in METHODS else "other", status)
        series = self._series.get(key)
        if series is None:
            # prometheus_client's labels() validates and locks on every call;
            # looked up once per combination, it is no longer per request.
            series = self._series[key] = (
                self.requests.labels(key[0], key[1], str(status)),
                self.latency.labels(route),
            )
        count, latency = series
        count.inc()
        latency.observe(seconds)

    def watch_fast_lane(self, lane: FastLane) -> None:
        self.registry.register(_FastLaneCollector(lane))

    def watch_upstream(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        """Report the proxy's counters: ``stats`` is its ``stats()``, read when scraped."""
        self.registry.register(_ProxyCollector(stats))

    def watch_mirror(self, status: Callable[[], Any]) -> None:
        """Report the mirror's progress: ``status`` gives its current ``MirrorStatus``."""
        self.registry.register(_MirrorCollector(status))

    def timed(self, call: str) -> Callable[[float], None]:
        """A function recording one store call's duration under ``call``."""
        return self.store_latency.labels(call).observe

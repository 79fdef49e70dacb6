"""``/health`` and ``/metrics``, in memory."""

from __future__ import annotations

import importlib.metadata
import json
import os

import pytest_twisted
from archive_factory import make_wheel, wheel_filename


@pytest_twisted.ensureDeferred
async def test_health_reports_store_and_storage(index):
    response = await index.request("GET", "/health")
    assert response.code == 200
    report = json.loads(response.body)
    assert report["status"] == "ok"
    assert report["version"] == importlib.metadata.version("ministry")
    assert report["store"] == {"ok": True, "backend": "SQLiteStore", "serial": 0}
    assert report["storage"]["ok"] is True


@pytest_twisted.ensureDeferred
async def test_health_is_503_with_the_reason_when_storage_is_not_writable(index):
    os.makedirs(index.blobs.root, exist_ok=True)
    staging = os.path.join(index.blobs.root, ".staging")
    if os.path.isdir(staging):
        os.rmdir(staging)
    with open(staging, "w") as blocker:  # a file where the staging directory should be
        blocker.write("x")
    response = await index.request("GET", "/health")
    assert response.code == 503
    report = json.loads(response.body)
    assert report["storage"]["ok"] is False and report["storage"]["error"]
    assert report["store"]["ok"] is True


@pytest_twisted.ensureDeferred
async def test_health_is_503_when_the_store_is_down(index):
    await index.store.stopService()
    try:
        response = await index.request("GET", "/health")
        assert response.code == 503
        assert json.loads(response.body)["store"]["ok"] is False
    finally:
        await index.store.startService()


@pytest_twisted.ensureDeferred
async def test_metrics_count_requests_uploads_and_cache_hits(index):
    wheel = make_wheel("counted", "1.0")
    await index.upload("counted", "1.0", wheel_filename("counted", "1.0"), wheel)
    for _ in range(3):
        await index.request("GET", "/simple/counted/")
    await index.request("GET", "/simple/absent/")
    response = await index.request("GET", "/metrics")
    assert response.code == 200
    assert response.header("content-type").startswith("text/plain")
    text = response.body.decode()
    assert 'ministry_http_requests_total{method="GET",route="simple",status="200"} 3.0' in text
    assert 'ministry_http_requests_total{method="GET",route="simple",status="404"} 1.0' in text
    assert 'ministry_http_requests_total{method="POST",route="",status="200"} 1.0' in text
    assert f"ministry_upload_bytes_total {float(len(wheel))}" in text
    assert "ministry_page_cache_hits_total 2.0" in text
    assert 'ministry_store_call_duration_seconds_count{call="add_file"} 1.0' in text
    assert 'ministry_http_request_duration_seconds_count{route="simple"} 4.0' in text


@pytest_twisted.ensureDeferred
async def test_metrics_count_unknown_methods_under_one_label(index):
    """A client inventing methods must not grow the number of series."""
    for method in ("BREW", "WHEN", "BREW"):
        await index.request(method, "/simple/")
    text = (await index.request("GET", "/metrics")).body.decode()
    assert 'ministry_http_requests_total{method="other",route="simple",status="405"} 3.0' in text
    assert "BREW" not in text and "WHEN" not in text


class CountedProbes:
    """Blobs whose probes the test answers: how many were asked, and each one's Deferred."""

    location = "file:/probed"

    def __init__(self) -> None:
        self.asked: list = []

    def probe(self):
        from twisted.internet.defer import Deferred

        self.asked.append(Deferred())
        return self.asked[-1]


def test_the_storage_probe_is_shared_kept_briefly_and_bounded_in_time():
    """Load balancers poll /health: one probe for many asks, none that hangs."""
    from twisted.internet.task import Clock

    from ministry.web.status import StorageHealth

    clock, blobs = Clock(), CountedProbes()
    health = StorageHealth(blobs, clock, keep=5, timeout=10)
    first, second = health.report(), health.report()
    assert len(blobs.asked) == 1 and not first.called
    blobs.asked[0].callback(None)
    assert first.result == second.result == {"ok": True, "location": "file:/probed"}
    clock.advance(4)
    assert health.report().result["ok"] is True and len(blobs.asked) == 1  # kept
    clock.advance(2)
    stuck = health.report()  # asked again: this probe never answers
    assert len(blobs.asked) == 2
    clock.advance(10)
    assert stuck.result == {
        "ok": False,
        "location": "file:/probed",
        "error": "no answer from the storage within 10 s",
    }


@pytest_twisted.ensureDeferred
async def test_every_pages_footer_names_the_version(index):
    version = importlib.metadata.version("ministry")
    for path in ("/", "/projects/", "/help/upload/"):
        response = await index.request("GET", path)
        assert f"MinistryOfPackages {version}".encode() in response.body, path

"""No request delays an unrelated one: hostile READMEs against a real ``twistd ministry``.

A reStructuredText README that docutils takes many seconds over, and one of
several megabytes, are uploaded and their pages requested while another
client polls ``/health``: every poll must answer within 100 ms, and the
pages must come back with the README shown as escaped text.
"""

from __future__ import annotations

import http.client
import threading
import time
import zipfile

import pytest
from archive_factory import make_wheel, metadata_text, wheel_filename
from http_harness import multipart, upload_fields
from servers import MinistryProcess, call
from test_page_cache import slow_rst

from ministry.catalog.readmes import SIZE_BUDGET, TIME_BUDGET

pytestmark = pytest.mark.e2e

#: The longest an unrelated request may wait.
LATENCY_BUDGET = 0.100


def upload_readme(url: str, name: str, description: str) -> None:
    metadata = metadata_text(
        name, "1.0", description=description, description_content_type="text/x-rst"
    )
    data = make_wheel(name, "1.0", metadata=metadata, compression=zipfile.ZIP_STORED)
    filename = wheel_filename(name, "1.0")
    body, content_type = multipart(
        upload_fields(name, "1.0", filename, data), [("content", filename, data)]
    )
    status, answer = call(url, "POST", "/", body, {"Content-Type": content_type})
    assert status == 200, answer


class HealthPoller(threading.Thread):
    """Asks for /health over and over on one connection, keeping the slowest answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
        self.slowest = 0.0
        self.polls = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            started = time.perf_counter()
            self.connection.request("GET", "/health")
            response = self.connection.getresponse()
            response.read()
            assert response.status == 200
            self.slowest = max(self.slowest, time.perf_counter() - started)
            self.polls += 1
            time.sleep(0.01)
        self.connection.close()


@pytest.fixture
def daemon(tmp_path):
    with MinistryProcess(tmp_path / "data") as process:
        yield process


def test_health_answers_within_100ms_while_hostile_readmes_render(daemon):
    slow = slow_rst(500_000)  # about five seconds of docutils: over the time budget
    huge = slow_rst(3 * 1024**2)  # over the size budget: never rendered
    assert len(slow) < SIZE_BUDGET < len(huge)
    poller = HealthPoller(daemon.url)
    poller.start()
    try:
        started = time.monotonic()
        upload_readme(daemon.url, "slow-readme", slow)
        upload_readme(daemon.url, "huge-readme", huge)
        pages = {
            name: call(daemon.url, "GET", f"/project/{name}/")
            for name in ("slow-readme", "huge-readme")
        }
        elapsed = time.monotonic() - started
    finally:
        poller.done.set()
        poller.join(30)
    for name, (status, body) in pages.items():
        assert status == 200, name
        assert b'<pre class="readme-text">Section 0\n=========' in body, name
        assert b"<em>text</em>" not in body, name
    assert elapsed < TIME_BUDGET + 10
    assert poller.polls > 20
    assert poller.slowest < LATENCY_BUDGET, f"/health took {poller.slowest * 1000:.0f} ms"

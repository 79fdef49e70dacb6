"""Several ``twistd ministry`` processes sharing one Redis and one data directory.

Real processes, a real redis-server: the scaling story of the design, shown
end to end. Uploads to one process show in the other at once (pub/sub
invalidation, no timeout), a race for one filename has exactly one winner,
and an outage of Redis is answered with 503s, never hangs, and heals itself.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from accept_headers import JSON_V1
from archive_factory import make_wheel, wheel_filename
from http_harness import multipart, upload_fields
from redis_server import RedisServer
from servers import MinistryProcess

pytestmark = pytest.mark.e2e


def call(url: str, method: str, path: str, body: bytes = b"", headers=None, timeout=30):
    """One HTTP request; (status, reason, body)."""
    host = url.removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=timeout)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.reason, response.read()
    finally:
        connection.close()


def upload(url: str, name: str, version: str, data: bytes):
    filename = wheel_filename(name, version)
    body, content_type = multipart(
        upload_fields(name, version, filename, data), [("content", filename, data)]
    )
    return call(url, "POST", "/", body, {"Content-Type": content_type})


def files_on(url: str, project: str) -> list[str]:
    status, _, body = call(url, "GET", f"/simple/{project}/", headers={"Accept": JSON_V1})
    return [entry["filename"] for entry in json.loads(body)["files"]] if status == 200 else []


def blobs_named(data_dir: Path, filename: str) -> list[Path]:
    return [path for path in (data_dir / "files").rglob(filename)]


@pytest.fixture
def redis():
    with RedisServer() as server:
        yield server


@pytest.fixture
def pair(tmp_path, redis):
    """Two daemons on one Redis and one data directory."""
    data = tmp_path / "shared"
    args = ("--redis", redis.url)
    with MinistryProcess(data, *args) as first, MinistryProcess(data, *args) as second:
        yield first, second, data


def test_an_upload_to_one_process_shows_in_the_other_at_once(pair):
    first, second, _ = pair
    # The second process renders and caches the page before the upload...
    assert call(second.url, "GET", "/simple/shared-pkg/")[0] == 404
    assert call(second.url, "GET", "/pypi/shared-pkg/json")[0] == 404
    assert upload(first.url, "shared-pkg", "1.0", make_wheel("shared-pkg", "1.0"))[0] == 200
    # ...and sees it right after, through Redis pub/sub, not a timeout.
    deadline = time.monotonic() + 1.0
    while files_on(second.url, "shared-pkg") == [] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert files_on(second.url, "shared-pkg") == [wheel_filename("shared-pkg", "1.0")]
    status, _, body = call(second.url, "GET", "/pypi/shared-pkg/json")
    assert status == 200 and json.loads(body)["info"]["version"] == "1.0"
    assert b"shared-pkg/" in call(second.url, "GET", "/packages/")[2]
    status, _, data = call(
        second.url, "GET", f"/packages/shared-pkg/{wheel_filename('shared-pkg', '1.0')}"
    )
    assert status == 200 and data == make_wheel("shared-pkg", "1.0")


def test_a_race_for_one_filename_has_exactly_one_winner(pair):
    first, second, data = pair
    for round_number in range(6):
        version = f"1.{round_number}"
        bodies = [make_wheel("racy", version, requires_python=f">=3.{n}") for n in (8, 9)]
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(
                    lambda job, version=version: upload(job[0], "racy", version, job[1]),
                    [(first.url, bodies[0]), (second.url, bodies[1])],
                )
            )
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [200, 409], results
        loser = next(reason for status, reason, _ in results if status == 409)
        assert "File already exists" in loser
        winner = bodies[[status for status, _, _ in results].index(200)]
        filename = wheel_filename("racy", version)
        stored = blobs_named(data, filename)
        assert len(stored) == 1, "the loser's bytes must not be left behind"
        assert stored[0].read_bytes() == winner
        for server in (first, second):
            assert call(server.url, "GET", f"/packages/racy/{filename}")[2] == winner


def test_serials_from_two_processes_never_repeat(pair):
    first, second, _ = pair
    jobs = [(first if n % 2 else second).url for n in range(12)]
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda job: upload(
                    job[1], f"serial-{job[0]}", "1.0", make_wheel(f"serial-{job[0]}", "1.0")
                ),
                enumerate(jobs),
            )
        )
    _, _, body = call(first.url, "GET", "/simple/", headers={"Accept": JSON_V1})
    serials = [project["_last-serial"] for project in json.loads(body)["projects"]]
    assert len(serials) == 12 and len(set(serials)) == 12
    assert json.loads(body)["meta"]["_last-serial"] == max(serials) == 12


def test_a_redis_outage_gives_prompt_503s_and_heals_itself(tmp_path, redis):
    data = tmp_path / "data"
    with MinistryProcess(data, "--redis", redis.url) as server:
        wheel = make_wheel("steady", "1.0")
        assert upload(server.url, "steady", "1.0", wheel)[0] == 200
        assert call(server.url, "GET", "/simple/steady/")[0] == 200  # now cached
        redis.stop()
        started = time.monotonic()
        status, reason, body = upload(server.url, "steady", "2.0", make_wheel("steady", "2.0"))
        assert status == 503, (status, reason)
        assert "Redis" in reason and b"unavailable" in body
        assert time.monotonic() - started < 12
        assert blobs_named(data, wheel_filename("steady", "2.0")) == []
        health_status, _, health = call(server.url, "GET", "/health")
        assert health_status == 503 and json.loads(health)["store"]["ok"] is False
        # Pages cached before the outage are still served.
        assert call(server.url, "GET", "/simple/steady/")[0] == 200
        redis.start()
        deadline = time.monotonic() + 15
        while call(server.url, "GET", "/health")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert call(server.url, "GET", "/health")[0] == 200
        assert upload(server.url, "steady", "2.0", make_wheel("steady", "2.0"))[0] == 200
        assert (
            hashlib.sha256(
                call(server.url, "GET", f"/packages/steady/{wheel_filename('steady', '2.0')}")[2]
            ).hexdigest()
            == hashlib.sha256(make_wheel("steady", "2.0")).hexdigest()
        )
        assert os.path.exists(data / "files")

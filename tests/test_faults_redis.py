"""Uploads while Redis stalls: no file is ever listed without its bytes.

A real ``twistd ministry`` on a real redis-server that is SIGSTOPped, again
and again, for longer than the store timeout, while several clients upload.
A stalled Redis still holds the commands it was sent and runs them when it
resumes, after the daemon answered 503: the claim lands although its
uploader was told it failed. The commit protocol keeps those bytes, so that
afterwards every listed file downloads byte-exact, and every upload that got
a 503 succeeds when retried.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from accept_headers import JSON_V1
from archive_factory import make_wheel, wheel_filename
from http_harness import multipart, upload_fields
from redis_server import RedisServer
from servers import MinistryProcess, call

pytestmark = pytest.mark.e2e

PROJECT = "stall-test"
#: The daemon's store timeout here (seconds), and how long each stall lasts.
STORE_TIMEOUT = 0.5
STALL, BETWEEN_STALLS, STALLS = 1.2, 0.6, 4
UPLOADERS = 4


def upload(url: str, version: str, data: bytes) -> int:
    filename = wheel_filename(PROJECT, version)
    fields = upload_fields(PROJECT, version, filename, data)
    body, content_type = multipart(fields, [("content", filename, data)])
    return call(url, "POST", "/legacy/", body, {"Content-Type": content_type}, 30)[0]


def stall_repeatedly(redis: RedisServer, done: threading.Event) -> None:
    try:
        for _ in range(STALLS):
            time.sleep(BETWEEN_STALLS)
            redis.pause()
            time.sleep(STALL)
            redis.resume()
    finally:
        redis.resume()
        done.set()


def upload_until(url: str, wheels: dict[str, bytes], done: threading.Event) -> dict[str, int]:
    """Take versions off the shared dict and upload each once, until the stalls end."""
    answered = {}
    while not done.is_set():
        try:
            version, data = wheels.popitem()
        except KeyError:
            break
        answered[version] = upload(url, version, data)
    return answered


def retry(url: str, version: str, data: bytes, attempts: int = 40) -> int:
    """Retry as twine would after a 503, until Redis is back (a few seconds at most)."""
    for _ in range(attempts):
        status = upload(url, version, data)
        if status != 503:
            return status
        time.sleep(0.25)
    return status


def test_uploads_survive_a_redis_that_stalls_past_the_store_timeout(tmp_path: Path) -> None:
    wheels = {f"1.{n}": make_wheel(PROJECT, f"1.{n}") for n in range(400)}
    sent = dict(wheels)
    with (
        RedisServer() as redis,
        MinistryProcess(
            tmp_path / "data", "--redis", redis.url, "--redis-timeout", str(STORE_TIMEOUT)
        ) as server,
    ):
        done = threading.Event()
        with ThreadPoolExecutor(UPLOADERS + 1) as pool:
            staller = pool.submit(stall_repeatedly, redis, done)
            uploads = [
                pool.submit(upload_until, server.url, wheels, done) for _ in range(UPLOADERS)
            ]
            answered = {k: v for future in uploads for k, v in future.result().items()}
            staller.result()
        refused = sorted(version for version, status in answered.items() if status == 503)
        assert set(answered.values()) <= {200, 503}, answered
        assert refused, "no upload met a stall: the test proved nothing"

        for version in refused:
            assert retry(server.url, version, sent[version]) == 200, server.log_tail()

        status, page = call(
            server.url, "GET", f"/simple/{PROJECT}/", headers={"Accept": JSON_V1}, timeout=30
        )
        assert status == 200
        listed = json.loads(page)["files"]
        expected = {wheel_filename(PROJECT, version) for version in answered}
        assert {entry["filename"] for entry in listed} == expected
        for entry in listed:
            status, body = call(
                server.url, "GET", f"/packages/{PROJECT}/{entry['filename']}", timeout=30
            )
            assert status == 200, (entry["filename"], body)
            assert hashlib.sha256(body).hexdigest() == entry["hashes"]["sha256"]
            version = entry["filename"].split("-")[1]
            assert body == sent[version]

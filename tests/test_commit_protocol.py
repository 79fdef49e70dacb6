"""The commit protocol: a file record is never visible without its bytes.

Bytes are committed before the record is claimed; a claim whose outcome the
store could not confirm keeps the bytes; a re-upload of the same bytes puts
back bytes that went missing; and bytes nobody claimed are collected, after
a grace period, at start-up and on a timer. In memory over the real SQLite
and filesystem stores; ``test_faults_redis.py`` does the same with a real
Redis that stalls.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
import pytest_twisted
from archive_factory import make_wheel, wheel_filename
from http_harness import InMemoryIndex
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from ministry.core.errors import StoreUnavailable
from ministry.integrity import GRACE_PERIOD, BlobCollector

WHEEL = make_wheel("tidy", "1.0")
WHEEL_NAME = wheel_filename("tidy", "1.0")


def lose_the_reply(index: InMemoryIndex) -> None:
    """The next claim is committed by the store but its caller hears a timeout.

    What a Redis that stalls past the store timeout does: the write waits in
    the socket and runs when Redis resumes, after the upload was answered 503.
    """
    claim = index.store.add_file

    def committed_then_timed_out(*args: object) -> Deferred:
        del index.store.add_file
        d = claim(*args)

        def timed_out(_: object) -> None:
            raise StoreUnavailable("Metadata store (Redis) unavailable: no reply within 5 s.")

        return d.addCallback(timed_out)

    index.store.add_file = committed_then_timed_out


async def download(index: InMemoryIndex, filename: str = WHEEL_NAME):
    return await index.request("GET", f"/packages/tidy/{filename}")


def blob_path(index: InMemoryIndex, data: bytes = WHEEL, filename: str = WHEEL_NAME) -> Path:
    sha256 = hashlib.sha256(data).hexdigest()
    return Path(index.blobs.local_path(f"{sha256[:2]}/{sha256[2:4]}/{sha256[4:]}/{filename}"))


@pytest_twisted.ensureDeferred
async def test_a_claim_the_store_could_not_confirm_keeps_the_bytes(index):
    lose_the_reply(index)
    response = await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL)
    assert response.code == 503

    # The record landed after all: it is listed, so its bytes must be there.
    served = await download(index)
    assert served.code == 200, served.phrase
    assert served.body == WHEEL
    # And retrying the upload, as twine does after a 503, is a plain success.
    assert (await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL)).code == 200


@pytest.mark.parametrize("damage", ["missing", "truncated"])
@pytest_twisted.ensureDeferred
async def test_uploading_the_same_bytes_again_repairs_the_file(index, damage):
    assert (await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL)).code == 200
    blob = blob_path(index)
    if damage == "missing":
        blob.unlink()
        assert (await download(index)).code == 404
    else:
        blob.write_bytes(WHEEL[:100])

    again = await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL)
    assert again.code == 200, again.phrase
    served = await download(index)
    assert served.code == 200
    assert served.body == WHEEL


# -- collecting what no record claims ------------------------------------------


def age(path: Path | str, seconds: float) -> None:
    """Make a file look ``seconds`` old."""
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


def orphan(index: InMemoryIndex, name: str, version: str, seconds_old: float) -> Path:
    """A committed blob that no record claims (an upload whose claim never landed)."""
    data = make_wheel(name, version)
    path = blob_path(index, data, wheel_filename(name, version))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    age(path, seconds_old)
    return path


def staged(index: InMemoryIndex, seconds_old: float) -> Path:
    path = Path(index.blobs.staging_path())
    path.write_bytes(b"half an upload")
    age(path, seconds_old)
    return path


@pytest_twisted.ensureDeferred
async def test_the_collector_removes_old_unclaimed_bytes_and_nothing_else(index, tmp_path):
    assert (await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL)).code == 200
    age(blob_path(index), 10 * GRACE_PERIOD)  # claimed: kept however old
    old_orphan = orphan(index, "tidy", "0.9", 2 * GRACE_PERIOD)
    young_orphan = orphan(index, "tidy", "0.8", GRACE_PERIOD / 2)  # a claim may still come
    old_staging, young_staging = staged(index, 2 * GRACE_PERIOD), staged(index, 60)
    stray = Path(index.blobs.root) / "README.txt"  # not laid out as a blob: not ours to judge
    stray.write_text("left here by an operator")
    age(stray, 10 * GRACE_PERIOD)

    clock = Clock()
    collector = BlobCollector(index.store, index.blobs, clock)
    collector.startService()
    try:
        # Not at start-up, where listing every blob slowed the first answers.
        await collector.running_pass()
        assert old_orphan.exists() and old_staging.exists()
        clock.advance(collector.first_delay)
        await collector.running_pass()
        assert not old_orphan.exists() and not old_staging.exists()
        assert not old_orphan.parent.exists()  # its empty directories go too
        assert young_orphan.exists() and young_staging.exists() and stray.exists()
        assert (await download(index)).body == WHEEL

        # Later passes come on the clock.
        age(young_orphan, 2 * GRACE_PERIOD)
        clock.advance(collector.interval)
        await collector.running_pass()
        assert not young_orphan.exists()
    finally:
        await collector.stopService()
    assert (await download(index)).body == WHEEL


@pytest_twisted.ensureDeferred
async def test_the_collector_spares_bytes_a_concurrent_upload_just_committed(index):
    path = orphan(index, "tidy", "0.9", 2 * GRACE_PERIOD)
    key = os.path.relpath(path, index.blobs.root)
    cutoff = time.time() - GRACE_PERIOD
    # Seen as old and unclaimed; then an upload of the same file commits it
    # again (a fresh file renamed over it) before the collector removes it.
    age(path, 0)
    assert await index.blobs.remove_stale(key, cutoff) is False
    assert path.exists()
    age(path, 2 * GRACE_PERIOD)
    assert await index.blobs.remove_stale(key, cutoff) is True
    assert not path.exists()


@pytest_twisted.ensureDeferred
async def test_the_collector_removes_nothing_when_the_store_cannot_say(index):
    path = orphan(index, "tidy", "0.9", 2 * GRACE_PERIOD)

    def unavailable() -> Deferred:
        return fail(StoreUnavailable("Metadata store (Redis) unavailable: no reply."))

    index.store.blob_keys = unavailable
    clock = Clock()
    collector = BlobCollector(index.store, index.blobs, clock)
    collector.startService()
    clock.advance(collector.first_delay)
    await collector.running_pass()
    await collector.stopService()
    assert path.exists()


def test_the_daemon_collects_the_uploads_root_only(tmp_path):
    from ministry.tap import main_options, makeService

    service = makeService(main_options(["--data-dir", str(tmp_path), "--port", "tcp:0"]))
    collector = service.getServiceNamed("collector")
    assert isinstance(collector, BlobCollector)
    assert collector.blobs.root == str(tmp_path / "files")

"""The filesystem blob store: durable commits, safe keys, tidy directories."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from reactor_hygiene import assert_reactor_clean
from twisted.internet import reactor
from twisted.internet.task import deferLater
from zope.interface.verify import verifyObject

from ministry.core.models import FileRecord, utcnow
from ministry.interfaces import IBlobStore
from ministry.stores.blobs import FilesystemBlobStore

PAYLOAD = bytes(range(256)) * 1000 + b"\x00 trailing"


@pytest.fixture(autouse=True)
def reactor_is_left_clean() -> Iterator[None]:
    """Fail a test that leaves timers or sockets behind (see reactor_hygiene)."""
    yield
    pytest_twisted.blockon(deferLater(reactor, 0, lambda: None))
    assert_reactor_clean()


@pytest.fixture
def blobs(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(str(tmp_path / "blobs"))


def stage(blobs: FilesystemBlobStore, data: bytes = PAYLOAD) -> str:
    path = blobs.staging_path()
    Path(path).write_bytes(data)
    return path


def blob_key(filename: str = "demo_pkg-1.0.tar.gz", sha256: str = "ab" * 32) -> str:
    record = FileRecord(
        project="demo-pkg",
        filename=filename,
        version="1.0",
        packagetype="sdist",
        size=len(PAYLOAD),
        sha256=sha256,
        blake2b_256="",
        md5="",
        upload_time=utcnow(),
    )
    return record.blob_key


def files_under(root: str) -> list[str]:
    """Every file and directory under ``root``, relative, sorted."""
    found = []
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.append(os.path.relpath(os.path.join(directory, name), root))
    return sorted(found)


def test_provides_the_interface(blobs: FilesystemBlobStore, tmp_path: Path) -> None:
    assert verifyObject(IBlobStore, blobs)
    assert blobs.root == str(tmp_path / "blobs")


def test_construction_touches_nothing(tmp_path: Path) -> None:
    FilesystemBlobStore(str(tmp_path / "blobs"))
    assert list(tmp_path.iterdir()) == []


def test_staging_paths_are_fresh_and_inside_the_root(blobs: FilesystemBlobStore) -> None:
    paths = {blobs.staging_path() for _ in range(100)}
    assert len(paths) == 100
    for path in paths:
        assert os.path.dirname(path) == os.path.join(blobs.root, ".staging")
        assert not os.path.exists(path)
    assert os.path.isdir(os.path.join(blobs.root, ".staging"))


@pytest_twisted.ensureDeferred
async def test_commit_puts_the_exact_bytes_at_the_key(blobs: FilesystemBlobStore) -> None:
    staged = stage(blobs)
    key = blob_key()
    await blobs.commit(staged, key)

    assert Path(blobs.local_path(key)).read_bytes() == PAYLOAD
    assert not os.path.exists(staged)
    assert os.listdir(os.path.join(blobs.root, ".staging")) == []


@pytest_twisted.ensureDeferred
async def test_commit_of_the_same_key_again_keeps_one_file(blobs: FilesystemBlobStore) -> None:
    key = blob_key()
    await blobs.commit(stage(blobs), key)
    await blobs.commit(stage(blobs), key)
    assert Path(blobs.local_path(key)).read_bytes() == PAYLOAD


@pytest_twisted.ensureDeferred
async def test_commit_of_a_missing_staged_file_fails(blobs: FilesystemBlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        await blobs.commit(blobs.staging_path(), blob_key())


def test_discard_removes_the_staged_file_silently(blobs: FilesystemBlobStore) -> None:
    staged = stage(blobs)
    blobs.discard(staged)
    assert not os.path.exists(staged)
    blobs.discard(staged)  # already gone: still no error
    blobs.discard(blobs.staging_path())  # never written


@pytest.mark.parametrize(
    "key",
    [
        "/etc/passwd",
        "../outside",
        "ab/../../outside",
        "ab/cd/../../..",
        "ab//cd",
        "",
        "ab/./cd",
        ".staging/leftover.part",
        "ab/cd/.hidden",
    ],
)
@pytest_twisted.ensureDeferred
async def test_keys_that_could_escape_are_refused(blobs: FilesystemBlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="Refusing blob key"):
        blobs.local_path(key)
    staged = stage(blobs)
    with pytest.raises(ValueError):
        await blobs.commit(staged, key)
    assert os.path.exists(staged)  # nothing moved
    with pytest.raises(ValueError):
        await blobs.delete(key)


def test_local_path_is_under_the_root(blobs: FilesystemBlobStore) -> None:
    key = blob_key()
    assert blobs.local_path(key) == os.path.join(blobs.root, *key.split("/"))


@pytest_twisted.ensureDeferred
async def test_delete_prunes_directories_left_empty(blobs: FilesystemBlobStore) -> None:
    kept = blob_key("demo_pkg-1.0.tar.gz", sha256="ab" * 32)
    deleted = blob_key("demo_pkg-2.0.tar.gz", sha256="abcd" + "ef" * 30)
    await blobs.commit(stage(blobs), kept)
    await blobs.commit(stage(blobs), deleted)

    await blobs.delete(deleted)

    assert not os.path.exists(blobs.local_path(deleted))
    assert os.path.exists(blobs.local_path(kept))
    assert files_under(blobs.root) == sorted(
        [".staging", "ab", "ab/ab", "ab/ab/" + "ab" * 30, kept.replace("/", os.sep)]
    )

    await blobs.delete(kept)
    assert files_under(blobs.root) == [".staging"]
    assert os.path.isdir(blobs.root)


@pytest_twisted.ensureDeferred
async def test_delete_of_a_missing_blob_is_fine(blobs: FilesystemBlobStore) -> None:
    await blobs.delete(blob_key())
    assert not os.path.exists(blobs.root)


def test_cleanup_staging_removes_only_old_leftovers(blobs: FilesystemBlobStore) -> None:
    old, new = stage(blobs), stage(blobs)
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))

    assert blobs.cleanup_staging(older_than_seconds=600) == 1
    assert not os.path.exists(old)
    assert os.path.exists(new)
    a_minute_ago = time.time() - 60
    os.utime(new, (a_minute_ago, a_minute_ago))
    assert blobs.cleanup_staging(older_than_seconds=30) == 1
    assert not os.path.exists(new)


def test_cleanup_staging_without_a_staging_directory(blobs: FilesystemBlobStore) -> None:
    assert blobs.cleanup_staging(older_than_seconds=0) == 0

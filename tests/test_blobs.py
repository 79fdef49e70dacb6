"""The filesystem blob store beyond the contract: paths, durability, tidy directories.

What every blob store does is in ``test_blob_contract.py``, which runs on
this store too; here is only what a directory has and a bucket has not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import pytest_twisted
from test_blob_contract import PAYLOAD, blob_key, stage

from ministry.stores.blobs import FilesystemBlobStore


@pytest.fixture
def blobs(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(str(tmp_path / "blobs"))


def files_under(root: str) -> list[str]:
    """Every file and directory under ``root``, relative, sorted."""
    found = []
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.append(os.path.relpath(os.path.join(directory, name), root))
    return sorted(found)


def test_the_root_is_the_directory_given(blobs: FilesystemBlobStore, tmp_path: Path) -> None:
    assert blobs.root == str(tmp_path / "blobs")
    assert blobs.location == f"file:{tmp_path / 'blobs'}"


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


def test_a_staging_path_costs_no_system_call_after_the_first(
    blobs: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every upload and download asks for one on the reactor: no disk, no random source."""
    blobs.staging_path()

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a system call for a staging path")

    for name in ("makedirs", "mkdir", "stat", "urandom"):
        monkeypatch.setattr(os, name, refused)
    assert len({blobs.staging_path() for _ in range(10)}) == 10


def test_staging_paths_differ_between_processes_and_stores(tmp_path: Path) -> None:
    """Processes (a forked one too) and hosts may share one staging directory."""
    root = str(tmp_path / "blobs")
    first, second = FilesystemBlobStore(root), FilesystemBlobStore(root)
    mine = {first.staging_path() for _ in range(50)} | {second.staging_path() for _ in range(50)}
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's names go back through the pipe
        os.close(reader)
        names = "\n".join(first.staging_path() for _ in range(50))
        os.write(writer, names.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        theirs = set(pipe.read().split("\n"))
    os.waitpid(child, 0)
    assert len(mine) == 100
    assert len(theirs) == 50
    assert not mine & theirs


def synced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """What the store fsyncs and renames, in order: ("file"|"directory"|"rename", path)."""
    from ministry.stores import blobs as module

    events: list[tuple[str, str]] = []
    sync_file, sync_directory, replace = module._fsync_file, module._fsync_directory, os.replace

    def on_file(path: str) -> None:
        events.append(("file", path))
        sync_file(path)

    def on_directory(path: str) -> None:
        events.append(("directory", path))
        sync_directory(path)

    def on_replace(source: str, target: str) -> None:
        events.append(("rename", target))
        replace(source, target)

    monkeypatch.setattr(module, "_fsync_file", on_file)
    monkeypatch.setattr(module, "_fsync_directory", on_directory)
    monkeypatch.setattr(module.os, "replace", on_replace)
    return events


@pytest_twisted.ensureDeferred
async def test_an_upload_is_durable_bytes_first_then_every_new_name(
    blobs: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing can fetch an upload again: its bytes, its new directories, its name."""
    staged = stage(blobs)
    events = synced(monkeypatch)
    key = blob_key()
    await blobs.commit(staged, key)
    target = blobs.local_path(key)
    parents = [os.path.dirname(target)]
    while os.path.dirname(parents[-1]) != blobs.root:
        parents.append(os.path.dirname(parents[-1]))
    assert events[0] == ("file", staged)
    assert events[-2:] == [("rename", target), ("directory", os.path.dirname(target))]
    # Each directory made (ab, cd, the digest's) is made durable in its parent.
    made = [("directory", os.path.dirname(directory)) for directory in reversed(parents)]
    assert events[1:-2] == made


@pytest_twisted.ensureDeferred
async def test_a_refetchable_file_is_whole_or_missing_after_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy's cache: its bytes fsynced before the rename, no directory fsynced."""
    cache = FilesystemBlobStore(str(tmp_path / "upstream" / "files"), refetchable=True)
    staged = stage(cache)
    events = synced(monkeypatch)
    key = blob_key()
    await cache.commit(staged, key)
    assert events == [("file", staged), ("rename", cache.local_path(key))]
    assert Path(cache.local_path(key)).read_bytes() == PAYLOAD


def test_the_daemons_proxy_cache_is_refetchable_and_its_uploads_are_not(tmp_path: Path) -> None:
    from twisted.internet.task import Clock

    from ministry.backends import build_storage
    from ministry.config import load_settings

    storage = build_storage(load_settings({"data-dir": str(tmp_path)}), str(tmp_path), Clock())
    assert (storage.uploads.refetchable, storage.upstream.refetchable) == (False, True)


@pytest_twisted.ensureDeferred
async def test_commit_puts_the_exact_bytes_at_the_key(blobs: FilesystemBlobStore) -> None:
    staged = stage(blobs)
    key = blob_key()
    await blobs.commit(staged, key)

    assert Path(blobs.local_path(key)).read_bytes() == PAYLOAD
    assert not os.path.exists(staged)
    assert os.listdir(os.path.join(blobs.root, ".staging")) == []


@pytest_twisted.ensureDeferred
async def test_a_local_copy_is_the_blob_itself(blobs: FilesystemBlobStore) -> None:
    key = blob_key()
    await blobs.commit(stage(blobs), key)
    copy = await blobs.local_copy(key)
    assert copy.path == blobs.local_path(key)
    copy.close()
    assert os.path.exists(blobs.local_path(key))


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
def test_keys_that_could_escape_have_no_path(blobs: FilesystemBlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="Refusing blob key"):
        blobs.local_path(key)


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
async def test_delete_of_a_missing_blob_creates_nothing(blobs: FilesystemBlobStore) -> None:
    await blobs.delete(blob_key())
    assert not os.path.exists(blobs.root)

"""A full disk while an upload is staged: 507 with a reason, nothing left behind, and the
next upload stored once there is space again.

The disk is "filled" by making the staging file's writes fail with ENOSPC
after a few kilobytes, as they would on a full filesystem.
"""

from __future__ import annotations

import errno
import os

import pytest_twisted
from archive_factory import make_wheel, wheel_filename
from http_harness import InMemoryIndex

from ministry.web.http import form

WHEEL = make_wheel("tidy", "1.0", extra_members={"tidy/blob.bin": os.urandom(200_000)})
WHEEL_NAME = wheel_filename("tidy", "1.0")


class _FullDisk:
    """A file opened for writing on a disk with ``room`` bytes left."""

    def __init__(self, path: str, room: int) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._room = room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._file.write(data)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


def staged_and_stored(index: InMemoryIndex) -> list[str]:
    root = index.settings.data_dir + "/files"
    return sorted(name for _, _, names in os.walk(root) for name in names)


@pytest_twisted.ensureDeferred
async def test_a_full_disk_while_staging_is_a_507_and_the_next_upload_works(index, monkeypatch):
    monkeypatch.setattr(form, "open", lambda path, mode: _FullDisk(path, 4096), raising=False)
    refused = await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL)
    assert refused.code == 507
    assert "disk is full" in refused.phrase
    assert refused.phrase in refused.body.decode()
    assert staged_and_stored(index) == []

    monkeypatch.undo()  # space has been freed
    stored = await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL)
    assert stored.code == 200, stored.body
    download = await index.request("GET", f"/packages/tidy/{WHEEL_NAME}")
    assert download.body == WHEEL

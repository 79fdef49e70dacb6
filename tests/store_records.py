"""Store records for the store tests: complete, so that a round trip checks every field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ministry.core.models import SDIST, WHEEL, FileRecord, TokenRecord, UserRecord


def make_record(
    filename: str = "demo_pkg-1.0-py3-none-any.whl",
    project: str = "demo-pkg",
    sha256: str = "a" * 64,
    **changes: Any,
) -> FileRecord:
    """A complete record; every field set so round-trips test all of them."""
    values: dict[str, Any] = {
        "project": project,
        "filename": filename,
        "version": "1.0",
        "packagetype": WHEEL,
        "size": 1234,
        "sha256": sha256,
        "blake2b_256": "b" * 64,
        "md5": "c" * 32,
        "upload_time": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        "requires_python": ">=3.9",
        "python_version": "py3",
        "metadata_sha256": "d" * 64,
        "yanked": None,
        "origin": "upload",
    }
    values.update(changes)
    return FileRecord(**values)


SDIST_RECORD = make_record(
    filename="demo_pkg-1.0.tar.gz",
    sha256="e" * 64,
    packagetype=SDIST,
    python_version="source",
    requires_python=None,
    metadata_sha256=None,
)


def sdist(filename: str, version: str, sha256: str = "e" * 64) -> FileRecord:
    return SDIST_RECORD.with_changes(filename=filename, version=version, sha256=sha256)


CREATED = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def make_user(name: str = "alice", admin: bool = False) -> UserRecord:
    return UserRecord(name, f"scrypt$hash-of-{name}", admin, CREATED)


def make_token(token_id: str, username: str = "alice", *projects: str) -> TokenRecord:
    return TokenRecord(token_id, username, f"digest-{token_id}", tuple(projects), CREATED)


async def add_releases(store: Any, project: str, count: int) -> None:
    """``project`` 1.0 to 1.<count - 1>, one wheel each, stored directly (as an import would)."""
    stem = project.replace("-", "_")
    for n in range(count):
        record = make_record(
            f"{stem}-1.{n}-py3-none-any.whl", project, f"{n:064x}", version=f"1.{n}"
        )
        assert await store.add_file(record, project, None)

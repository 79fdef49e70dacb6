"""``export DIR`` and ``import DIR``: a whole index copied between stores, or backed up.

This is how an index moves from the embedded store to Redis as a team grows.
An export directory holds ``projects.jsonl`` (one ProjectRecord a line),
``files.jsonl`` (one FileRecord a line, with its core metadata in base64),
and ``files/`` with the distribution files under their blob keys (hard links
when on the same filesystem). Either side may be a directory or a bucket
(``--storage``), which is how an index moves from ``file:`` to ``s3://``
and back: export with one setting, import with the other. Importing re-claims every file through the
store's normal ``add_file`` (so serials are the importing store's own) after
checking each file's sha256; files already present with the same bytes are
skipped, conflicts are reported and skipped.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
from typing import Any

from twisted.internet.threads import deferToThread

from ministry.core.errors import FileExists, FilenameReused, SdistExists
from ministry.core.models import ACTIVE, FileRecord, ProjectRecord
from ministry.integrity import sha256_of
from ministry.interfaces import IBlobStore, IMetadataStore


def _link_or_copy(source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.exists(target):
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


async def export_index(
    store: IMetadataStore, blobs: IBlobStore, directory: str, with_files: bool = True
) -> tuple[int, int]:
    """Write every project and file of ``store`` to ``directory``; (projects, files)."""
    os.makedirs(directory, exist_ok=True)
    projects: list[ProjectRecord] = await store.list_projects()
    files: list[tuple[FileRecord, bytes | None]] = []
    for project in projects:
        for record in await store.list_files(project.name):
            files.append((record, await store.get_metadata(project.name, record.filename)))
    with open(os.path.join(directory, "projects.jsonl"), "w", encoding="utf-8") as out:
        for project in projects:
            out.write(json.dumps(project.to_dict()) + "\n")
    with open(os.path.join(directory, "files.jsonl"), "w", encoding="utf-8") as out:
        for record, metadata in files:
            line: dict[str, Any] = {"record": record.to_dict()}
            if metadata is not None:
                line["metadata"] = base64.b64encode(metadata).decode()
            out.write(json.dumps(line) + "\n")
    if with_files:
        for record, _ in files:
            copy = await blobs.local_copy(record.blob_key)
            try:
                target = os.path.join(directory, "files", record.blob_key)
                await deferToThread(_link_or_copy, copy.path, target)
            finally:
                copy.close()
    return len(projects), len(files)


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


async def import_index(
    store: IMetadataStore, blobs: IBlobStore, directory: str
) -> tuple[int, int, list[str]]:
    """Load an export into ``store``; (files added, files already there, problems)."""
    projects = {
        data["name"]: ProjectRecord.from_dict(data)
        for data in _read_jsonl(os.path.join(directory, "projects.jsonl"))
    }
    added, present, problems = 0, 0, []
    for line in _read_jsonl(os.path.join(directory, "files.jsonl")):
        record = FileRecord.from_dict(line["record"])
        metadata = base64.b64decode(line["metadata"]) if "metadata" in line else None
        source = os.path.join(directory, "files", record.blob_key)
        if await blobs.size(record.blob_key) != record.size:
            if not os.path.exists(source) or sha256_of(source) != record.sha256:
                problems.append(f"{record.filename}: file missing or damaged in the export")
                continue
            staging = blobs.staging_path()
            await deferToThread(shutil.copyfile, source, staging)
            try:
                await blobs.commit(staging, record.blob_key)
            finally:
                blobs.discard(staging)
        project = projects.get(record.project)
        display_name = project.display_name if project else record.project
        try:
            if await store.add_file(record, display_name, metadata):
                added += 1
            else:
                present += 1
        except (FileExists, FilenameReused, SdistExists) as exc:
            problems.append(exc.message)
    for project in projects.values():
        if project.info:
            await store.register(project.name, project.display_name, project.info)
        if project.status != ACTIVE:
            await store.set_project_status(project.name, project.status, project.status_reason)
    return added, present, problems


async def export_command(
    args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore, *_: Any
) -> None:
    """``export DIR [--metadata-only]``."""
    count = await export_index(store, blobs, args.directory, not args.metadata_only)
    print(f"Exported {count[0]} projects and {count[1]} files to {args.directory}")


async def import_command(
    args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore, *_: Any
) -> None:
    """``import DIR``: exit 1 if anything was skipped, each reported on stderr."""
    added, present, problems = await import_index(store, blobs, args.directory)
    print(f"Imported {added} files ({present} were already there)")
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if problems:
        raise SystemExit(1)

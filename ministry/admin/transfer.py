"""``export DIR`` and ``import DIR``: a whole index copied between stores, or backed up.

This is how an index moves from the embedded store to Redis as a team grows,
and how it is backed up and restored. An export directory holds one JSON
document a line in each of:

- ``projects.jsonl``: ProjectRecords (registered metadata, PEP 792 status,
  the summary of the latest release);
- ``files.jsonl``: FileRecords (yanks and provenance included), each with
  its core metadata in base64;
- ``users.jsonl`` (password hashes as stored), ``tokens.jsonl`` (digests
  only: a token's secret is never kept, with its scope), ``teams.jsonl``
  (TeamRecords, members included), ``roles.jsonl`` (owners and maintainers,
  users or ``@team``s);
- ``tombstones.jsonl``: deleted files, whose filenames stay refused;
- ``cooldown.jsonl``: the cooldown exceptions;
- ``audit.jsonl``: the audit log, newest first, as ``ministry-admin audit
  --json`` prints it;

and ``files/`` with every blob the records name (distribution files and
their PEP 740 provenance) under their keys (hard links when on the same
filesystem). Either side may be a directory or a bucket (``--storage``),
which is how an index moves from ``file:`` to ``s3://`` and back: export
with one setting, import with the other.

Importing re-claims every file through the store's normal ``add_file`` (so
serials are the importing store's own) after checking each file's sha256;
files already present with the same bytes are skipped, conflicts are
reported and skipped. Each project's summary is offered last, as exported,
by the rule the store keeps it by (``ministry.core.summaries``), so it comes
back as it was; one exported before summaries existed is made from the
files' metadata as they are re-claimed. Users, tokens, teams and roles
already there are kept as they are. The audit log is appended oldest first,
then one ``upload`` entry per project that got files, naming the export: an
import changes what installs get, like any upload. An export made before a
section existed simply lacks its file, and imports as before.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any

from twisted.internet.threads import deferToThread

from ministry.admin.releases import cli_actor
from ministry.core import audit
from ministry.core.audit import AuditEvent
from ministry.core.cooldown import CooldownException
from ministry.core.errors import FileExists, FilenameReused, SdistExists
from ministry.core.models import (
    ACTIVE,
    FileRecord,
    ProjectRecord,
    TeamRecord,
    TokenRecord,
    UserRecord,
)
from ministry.core.summaries import metadata_summary
from ministry.curation import Curator
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


def _write_jsonl(directory: str, name: str, documents: Iterable[dict[str, Any]]) -> None:
    with open(os.path.join(directory, name), "w", encoding="utf-8") as out:
        for document in documents:
            out.write(json.dumps(document) + "\n")


async def export_index(
    store: IMetadataStore, blobs: IBlobStore, directory: str, with_files: bool = True
) -> tuple[int, int]:
    """Write all of ``store`` (see the module docstring) and its blobs; (projects, files)."""
    os.makedirs(directory, exist_ok=True)
    projects: list[ProjectRecord] = await store.list_projects()
    files: list[tuple[FileRecord, bytes | None]] = []
    roles: list[dict[str, str]] = []
    tombstones: list[dict[str, str]] = []
    for project in projects:
        for record in await store.list_files(project.name):
            files.append((record, await store.get_metadata(project.name, record.filename)))
        for username, role in sorted((await store.get_roles(project.name)).items()):
            roles.append({"project": project.name, "username": username, "role": role})
        for filename, sha256 in sorted((await store.tombstones(project.name)).items()):
            tombstones.append({"project": project.name, "filename": filename, "sha256": sha256})
    _write_jsonl(directory, "projects.jsonl", (project.to_dict() for project in projects))
    _write_jsonl(directory, "files.jsonl", (_file_line(*item) for item in files))
    _write_jsonl(directory, "users.jsonl", (user.to_dict() for user in await store.list_users()))
    _write_jsonl(directory, "tokens.jsonl", (t.to_dict() for t in await store.list_tokens()))
    _write_jsonl(directory, "teams.jsonl", (t.to_dict() for t in await store.list_teams()))
    _write_jsonl(directory, "roles.jsonl", roles)
    _write_jsonl(directory, "tombstones.jsonl", tombstones)
    exceptions = await store.cooldown_exceptions()
    _write_jsonl(directory, "cooldown.jsonl", (exception.to_dict() for exception in exceptions))
    events = await store.list_audit(None, sys.maxsize)
    _write_jsonl(directory, "audit.jsonl", (event.to_dict() for event in events))
    if with_files:
        for record, _ in files:
            for key in record.stored_keys:
                copy = await blobs.local_copy(key)
                try:
                    target = os.path.join(directory, "files", key)
                    await deferToThread(_link_or_copy, copy.path, target)
                finally:
                    copy.close()
    return len(projects), len(files)


def _file_line(record: FileRecord, metadata: bytes | None) -> dict[str, Any]:
    line: dict[str, Any] = {"record": record.to_dict()}
    if metadata is not None:
        line["metadata"] = base64.b64encode(metadata).decode()
    return line


def _read_jsonl(directory: str, name: str) -> list[dict[str, Any]]:
    """A section's documents; none when the export predates the section."""
    path = os.path.join(directory, name)
    if name != "files.jsonl" and not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


async def import_index(
    store: IMetadataStore, blobs: IBlobStore, directory: str
) -> tuple[int, int, list[str]]:
    """Load an export into ``store``; (files added, files already there, problems)."""
    for data in _read_jsonl(directory, "users.jsonl"):
        await store.add_user(UserRecord.from_dict(data))  # False: kept as it is
    for data in _read_jsonl(directory, "tokens.jsonl"):
        token = TokenRecord.from_dict(data)
        if await store.get_token(token.id) is None:
            await store.add_token(token)
    for data in _read_jsonl(directory, "teams.jsonl"):
        await store.add_team(TeamRecord.from_dict(data))  # False: kept as it is
    exported = _read_jsonl(directory, "projects.jsonl")
    projects = {data["name"]: ProjectRecord.from_dict(data) for data in exported}
    #: Exported before summaries were kept: theirs are made from the metadata.
    unsummarised = {data["name"] for data in exported if "summary" not in data}
    added: Counter[str] = Counter()
    present, problems = 0, []
    for line in _read_jsonl(directory, "files.jsonl"):
        record = FileRecord.from_dict(line["record"])
        problem = await _import_blobs(blobs, directory, record)
        if problem is not None:
            problems.append(problem)
            continue
        project = projects.get(record.project)
        display_name = project.display_name if project else record.project
        metadata = base64.b64decode(line["metadata"]) if "metadata" in line else None
        summary = None
        if metadata is not None and record.project in unsummarised:
            summary = metadata_summary(metadata)
        try:
            if await store.add_file(record, display_name, metadata, summary):
                added[record.project] += 1
            else:
                present += 1
        except (FileExists, FilenameReused, SdistExists) as exc:
            problems.append(exc.message)
    for data in _read_jsonl(directory, "tombstones.jsonl"):
        await store.add_tombstone(data["project"], data["filename"], data["sha256"])
    for data in _read_jsonl(directory, "roles.jsonl"):
        if data["username"] not in await store.get_roles(data["project"]):
            await store.set_role(data["project"], data["username"], data["role"])
    for project in projects.values():
        if project.info:
            await store.register(project.name, project.display_name, project.info)
        if project.status != ACTIVE:
            await store.set_project_status(project.name, project.status, project.status_reason)
        if project.summary or project.summary_version is not None:
            await store.offer_summary(project.name, project.summary, project.summary_version)
    for data in _read_jsonl(directory, "cooldown.jsonl"):
        await store.allow_cooldown(CooldownException.from_dict(data))
    await _import_audit(store, blobs, directory, added)
    return sum(added.values()), present, problems


async def _import_blobs(blobs: IBlobStore, directory: str, record: FileRecord) -> str | None:
    """Put a record's blobs in storage, checked; a problem to report, or None."""
    for key in record.stored_keys:
        expected = record.sha256 if key == record.blob_key else record.provenance_sha256
        source = os.path.join(directory, "files", key)
        if key == record.blob_key and await blobs.size(key) == record.size:
            continue
        if not os.path.exists(source) or sha256_of(source) != expected:
            what = "file" if key == record.blob_key else "provenance"
            return f"{record.filename}: {what} missing or damaged in the export"
        staging = blobs.staging_path()
        await deferToThread(shutil.copyfile, source, staging)
        try:
            await blobs.commit(staging, key)
        finally:
            blobs.discard(staging)
    return None


async def _import_audit(
    store: IMetadataStore, blobs: IBlobStore, directory: str, added: Counter[str]
) -> None:
    """The export's audit log, oldest first, then an entry per project that got files."""
    for data in reversed(_read_jsonl(directory, "audit.jsonl")):
        await store.append_audit(AuditEvent.from_dict(data))
    curator = Curator(store, blobs)
    for project, count in sorted(added.items()):
        detail = f"{count} files imported from {os.path.abspath(directory)}"
        await curator.record(cli_actor(), audit.UPLOAD, project, detail=detail)


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

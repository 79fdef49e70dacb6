"""Yank, un-yank and delete files or whole releases, and set a project's
PEP 792 status: one implementation for ``ministry-admin`` and for the HTTP
API (``/api/*``, ``:action=remove_pkg``).

Callers decide who may do it (the web layer asks ``ministry.web.auth``; the
admin command runs with the store's own rights); this decides what a target
means and keeps the order that protects the invariants: a deleted file's
bytes go only after the store has committed the deletion (and its
tombstone), so a file is never listed without its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version
from twisted.logger import Logger

from ministry.core.errors import BadRequest, NotFound
from ministry.core.models import FileRecord, ProjectRecord
from ministry.core.names import canonical
from ministry.core.project_status import check_reason, check_status
from ministry.interfaces import IBlobStore, IMetadataStore

log = Logger()


@dataclass(frozen=True)
class Target:
    """What to act on: a whole release (``version``) or one file (``filename``)."""

    project: str  # canonical
    version: str | None = None
    filename: str | None = None

    @classmethod
    def of(cls, project: str, version: str | None, filename: str | None) -> Target:
        if (version is None) == (filename is None):
            raise BadRequest("Name either a version (a whole release) or a filename, not both.")
        return cls(canonical(project), version, filename)

    def __str__(self) -> str:
        return f"{self.filename}" if self.filename else f"{self.project} {self.version}"


def select_files(files: list[FileRecord], target: Target) -> list[FileRecord]:
    """The files a target names: a release's by PEP 440 equality (``1.0`` is ``1.0.0``)."""
    if target.filename is not None:
        return [record for record in files if record.filename == target.filename]
    return [record for record in files if _same_version(record.version, target.version or "")]


def _same_version(left: str, right: str) -> bool:
    try:
        return Version(left) == Version(right)
    except InvalidVersion:
        return left == right


class Curator:
    """Acts on the files a :class:`Target` names, or says there are none (404)."""

    def __init__(self, store: IMetadataStore, blobs: IBlobStore) -> None:
        self.store = store
        self.blobs = blobs

    async def select(self, target: Target) -> list[FileRecord]:
        chosen = select_files(await self.store.list_files(target.project), target)
        if not chosen:
            raise NotFound(f"No such file or release: {target}.")
        return chosen

    async def yank(self, target: Target, reason: str = "") -> list[str]:
        """Yank the target's files with ``reason``; the filenames whose state changed."""
        chosen = await self.select(target)
        changed = await self.store.set_yanked(target.project, [r.filename for r in chosen], reason)
        log.info("Yanked {target}: {reason!r}", target=target, reason=reason)
        return changed

    async def unyank(self, target: Target) -> list[str]:
        chosen = await self.select(target)
        changed = await self.store.set_yanked(target.project, [r.filename for r in chosen], None)
        log.info("Un-yanked {target}", target=target)
        return changed

    async def delete(self, target: Target) -> list[str]:
        """Delete the target's files, then their bytes; the filenames deleted."""
        chosen = await self.select(target)
        removed = await self.store.delete_files(target.project, [r.filename for r in chosen])
        for record in removed:
            await self.blobs.delete(record.blob_key)
        log.info("Deleted {target}", target=target)
        return [record.filename for record in removed]

    async def set_status(self, name: str, status: str, reason: str | None) -> ProjectRecord:
        """Give a hosted project (canonical ``name``) a status; 400 or 404 if it cannot."""
        status, reason = check_status(status), check_reason(reason)
        project = await self.store.set_project_status(name, status, reason)
        if project is None:
            raise NotFound(f"No such project hosted here: {name}.")
        log.info("{name} is now {status}: {reason!r}", name=name, status=status, reason=reason)
        return project

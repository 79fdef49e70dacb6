"""Redis replies as records: the same JSON documents the SQLite store keeps.

Records are serialised with their ``to_dict`` by both stores, so the two
agree on every field by construction.
"""

from __future__ import annotations

import json

from ministry.core.errors import FileExists, FilenameReused, SdistExists
from ministry.core.models import (
    ACTIVE,
    FileRecord,
    ProjectRecord,
    TokenRecord,
    UserRecord,
    parse_info,
    parse_time,
)

#: The project hash fields, in the order every reply lists them. A project
#: without ``status`` (none set yet, or stored before statuses) is active;
#: ``status_reason`` is absent when there is none, and so are ``summary`` and
#: ``summary_version`` until a release or registration gives them.
PROJECT_FIELDS = (
    "display_name",
    "created",
    "info",
    "serial",
    "status",
    "status_reason",
    "summary",
    "summary_version",
)


def project_record(name: str, fields: list[bytes | None]) -> ProjectRecord | None:
    """A project from its PROJECT_FIELDS values; None if it has none (no such project)."""
    display_name, created, info, serial, status, status_reason, summary, of = fields
    if display_name is None:
        return None
    return ProjectRecord(
        name=name,
        display_name=display_name.decode(),
        serial=int(serial),
        created=parse_time(created.decode()),
        info=parse_info(info),
        status=ACTIVE if status is None else status.decode(),
        status_reason=None if status_reason is None else status_reason.decode(),
        summary="" if summary is None else summary.decode(),
        summary_version=None if of is None else of.decode(),
    )


def project_records(reply: list[list[bytes]]) -> list[ProjectRecord]:
    """LIST_PROJECTS' reply (name, then the fields), by canonical name."""
    projects = [project_record(name.decode(), fields) for name, *fields in reply]
    return sorted(projects, key=lambda project: project.name)


def claim_outcome(reply: list[bytes], record: FileRecord) -> bool:
    """ADD_FILE's reply: True if ``record`` was added, False if its bytes were there.

    Raises the refusal the script reported: a tombstoned filename, a second
    sdist for the release, or the filename taken by other bytes.
    """
    outcome = reply[0]
    if outcome == b"exists":
        return False
    if outcome == b"reused":
        raise FilenameReused(record.filename, record.project)
    if outcome == b"sdist":
        raise SdistExists(record.filename, record.project, record.version, reply[1].decode())
    if outcome == b"conflict":
        raise FileExists(
            f"File already exists: {record.filename} was already uploaded to "
            f"{record.project} with other contents (sha256 {reply[1].decode()}). A "
            "filename always means the same bytes: upload under a new version."
        )
    return True


def file_record(record: bytes) -> FileRecord:
    return FileRecord.from_dict(json.loads(record))


def to_json(record: FileRecord | UserRecord | TokenRecord) -> str:
    """The stored form of a record: sorted keys, so equal records are equal bytes."""
    return json.dumps(record.to_dict(), sort_keys=True)


def user_record(data: bytes) -> UserRecord:
    return UserRecord.from_dict(json.loads(data))


def token_record(data: bytes) -> TokenRecord:
    return TokenRecord.from_dict(json.loads(data))


def tokens_of(reply: list[bytes], username: str | None) -> list[TokenRecord]:
    """Every token (HVALS), or one user's, by creation time."""
    tokens = [token_record(data) for data in reply]
    mine = [token for token in tokens if username is None or token.username == username]
    return sorted(mine, key=lambda token: (token.created, token.id))


def text_pairs(reply: list[bytes]) -> dict[str, str]:
    """A flat HGETALL reply (key, value, key, value...) as a dict of text."""
    return {reply[i].decode(): reply[i + 1].decode() for i in range(0, len(reply), 2)}

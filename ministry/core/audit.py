"""One entry of the audit log: a change that alters what installs get.

Uploads, yanks, un-yanks, deletes, project status changes, role changes
(a team's too), team changes and cooldown exceptions each leave one
:class:`AuditEvent`, saying who made it, when and from where. The record
is plain data so both metadata stores keep it as the same JSON document
(``to_dict``), and the export (JSON lines, one event a line, newest first)
is that document too: what an administrator downloads is exactly what is
stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ministry.core.models import format_time, parse_time

UPLOAD = "upload"
YANK = "yank"
UNYANK = "unyank"
DELETE = "delete"
STATUS = "status"
ROLE = "role"
COOLDOWN = "cooldown"
#: A team made, removed, or its members changed: ``project`` is then ``@team``.
TEAM = "team"
ACTIONS = (UPLOAD, YANK, UNYANK, DELETE, STATUS, ROLE, COOLDOWN, TEAM)

#: How many entries a listing gives unless asked for another number.
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class Actor:
    """Who made a change and from where: a user and a client address, or the CLI."""

    name: str
    address: str

    @classmethod
    def cli(cls, os_user: str) -> Actor:
        """``ministry-admin`` run by ``os_user``: it has the store's own rights, no address."""
        return cls(f"ministry-admin ({os_user})", "local")


@dataclass(frozen=True)
class AuditEvent:
    """A change: ``action`` (one of ACTIONS) on ``project`` (canonical) by ``actor``.

    ``version`` and ``filename`` narrow it down when it is about a release or
    a file; ``detail`` says what else matters (a yank's reason, the new
    status, the role given and to whom).
    """

    when: datetime
    actor: str
    address: str
    action: str
    project: str
    version: str | None = None
    filename: str | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")

    @classmethod
    def by(cls, actor: Actor, when: datetime, action: str, project: str, **rest: Any) -> AuditEvent:
        """The event of ``actor``'s change."""
        return cls(when, actor.name, actor.address, action, project, **rest)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "when": format_time(self.when)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditEvent:
        return cls(**{**data, "when": parse_time(data["when"])})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditEvent:
        return cls.from_dict(json.loads(text))


def json_lines(events: Iterable[AuditEvent]) -> str:
    """The export: one JSON document a line, each line ending in a newline."""
    return "".join(event.to_json() + "\n" for event in events)

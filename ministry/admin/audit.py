"""``audit [--project NAME] [--limit N] [--json]``: the audit log, newest first.

One line an entry, tab-separated (when, who, from where, action, project,
version or file, detail) for people; with ``--json`` the export itself, one
JSON document a line, as ``/admin/audit/?format=jsonl`` gives it.
"""

from __future__ import annotations

import argparse
from typing import Any

from ministry.core import audit
from ministry.core.audit import AuditEvent, json_lines
from ministry.core.names import check_project_name
from ministry.interfaces import IBlobStore, IMetadataStore


async def audit_command(
    args: argparse.Namespace, store: IMetadataStore, _blobs: IBlobStore, *_: Any
) -> None:
    project = check_project_name(args.project) if args.project else None
    events = await store.list_audit(project, args.limit)
    if args.json:
        print(json_lines(events), end="")
        return
    for event in events:
        print(_line(event))
    if not events:
        print("No audit entries.")


def _line(event: AuditEvent) -> str:
    what = event.filename or event.version or ""
    fields = (event.to_dict()["when"], event.actor, event.address, event.action, event.project)
    return "\t".join((*fields, what, event.detail))


def add_audit_command(commands: Any) -> None:
    command = commands.add_parser("audit", help="who changed what installs get, newest first")
    command.add_argument("--project", help="only this project's entries")
    command.add_argument(
        "--limit", type=int, default=audit.DEFAULT_LIMIT, help="how many (default: 100)"
    )
    command.add_argument("--json", action="store_true", help="JSON lines, the export")

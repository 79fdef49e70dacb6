"""The audit log's record and the SQLite schema version that added its table."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ministry.core.audit import Actor, AuditEvent, json_lines

WHEN = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_an_event_survives_its_dict_and_json() -> None:
    event = AuditEvent.by(
        Actor("alice", "192.0.2.7"), WHEN, "yank", "demo-pkg", version="1.0", detail="broken"
    )
    assert AuditEvent.from_dict(event.to_dict()) == event
    assert AuditEvent.from_json(event.to_json()) == event
    assert event.to_dict()["when"] == "2026-12-01T12:00:00.123456Z"


def test_the_export_is_one_json_document_a_line() -> None:
    events = [
        AuditEvent(WHEN, "alice", "192.0.2.7", "upload", "demo-pkg", "1.0", "demo_pkg-1.0.tar.gz"),
        AuditEvent(WHEN, "bob", "local", "role", "demo-pkg", detail="carol: maintainer"),
    ]
    lines = json_lines(events).splitlines()
    assert [json.loads(line)["actor"] for line in lines] == ["alice", "bob"]
    assert json_lines([]) == ""


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        AuditEvent(WHEN, "alice", "192.0.2.7", "rename", "demo-pkg")


def test_the_cli_names_the_os_user() -> None:
    assert Actor.cli("ops") == Actor("ministry-admin (ops)", "local")

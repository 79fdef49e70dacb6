"""``ministry-admin project status``, in a subprocess, on the files of a stopped index.

The command writes to the index's database as another process would; the
index, started again, serves what it set. Export and import carry the status.
"""

from __future__ import annotations

import json

import pytest_twisted
from accept_headers import UV
from test_admin import admin, populated


@pytest_twisted.ensureDeferred
async def test_the_command_line_shows_and_sets_a_project_status(tmp_path):
    source = await populated(tmp_path / "index")
    await source.stop()
    data = tmp_path / "index"

    assert admin(data, "project", "status", "Alpha").stdout == "alpha is active\n"
    marked = admin(data, "project", "status", "Alpha", "quarantined", "--reason", "malware")
    assert marked.stdout == "alpha is quarantined (malware)\n"
    assert admin(data, "project", "status", "alpha").stdout == "alpha is quarantined (malware)\n"
    admin(data, "project", "status", "beta.pkg", "deprecated")

    haunted = admin(data, "project", "status", "alpha", "haunted", ok=False)
    assert "invalid choice: 'haunted'" in haunted.stderr
    lone = admin(data, "project", "status", "alpha", "--reason", "why", ok=False)
    assert lone.stderr.strip() == "ministry-admin: --reason goes with a status to set"
    missing = admin(data, "project", "status", "nope", "archived", ok=False)
    assert missing.stderr.strip() == "ministry-admin: No such project hosted here: nope."
    long = admin(data, "project", "status", "alpha", "archived", "--reason", "x" * 501, ok=False)
    assert "over 500 characters" in long.stderr
    assert admin(data, "project", "status", "alpha").stdout == "alpha is quarantined (malware)\n"

    await source.start()
    try:
        page = json.loads((await source.request("GET", "/simple/alpha/", {"Accept": UV})).body)
        assert page["project-status"] == {"status": "quarantined", "reason": "malware"}
        assert page["files"] == []
        beta = json.loads((await source.request("GET", "/simple/beta-pkg/", {"Accept": UV})).body)
        assert beta["project-status"] == {"status": "deprecated"}
        assert len(beta["files"]) == 1
    finally:
        await source.stop()


@pytest_twisted.ensureDeferred
async def test_export_and_import_keep_the_status(tmp_path):
    source = await populated(tmp_path / "source")
    await source.store.set_project_status("alpha", "archived", "done")
    await source.stop()
    admin(tmp_path / "source", "export", str(tmp_path / "dump"))
    admin(tmp_path / "target", "import", str(tmp_path / "dump"))
    assert admin(tmp_path / "target", "project", "status", "alpha").stdout == (
        "alpha is archived (done)\n"
    )
    assert admin(tmp_path / "target", "project", "status", "beta-pkg").stdout == (
        "Beta.Pkg is active\n"
    )

"""``ministry-admin audit``, and the entries ministry-admin's own changes leave, in a subprocess.

Changes made with ``ministry-admin`` name the operating-system user who ran
it (``ministry-admin (<user>)``) and ``local`` as the address; uploads over
HTTP name their client.
"""

from __future__ import annotations

import getpass
import json

import pytest_twisted
from test_admin import admin, populated

CLI = f"ministry-admin ({getpass.getuser()})"


@pytest_twisted.ensureDeferred
async def test_the_command_line_lists_and_exports_the_audit_log(tmp_path):
    source = await populated(tmp_path / "index")
    await source.stop()
    data = tmp_path / "index"
    admin(data, "user", "add", "bob", "--password-stdin", stdin="bob-pw\n")

    admin(data, "yank", "alpha", "1.0", "--reason", "broken")
    admin(data, "project", "status", "alpha", "deprecated", "--reason", "use beta")
    admin(data, "project", "status", "alpha", "deprecated", "--reason", "use beta")  # no change
    admin(data, "project", "add-maintainer", "alpha", "bob")
    again = admin(data, "project", "add-maintainer", "alpha", "bob")  # no change
    assert again.stdout == "bob is already maintainer of alpha\n"
    admin(data, "project", "remove-role", "alpha", "bob")
    admin(data, "project", "remove-role", "alpha", "bob")  # no change
    admin(data, "delete", "beta.pkg", "0.3")

    exported = admin(data, "audit", "--json").stdout.splitlines()
    entries = [json.loads(line) for line in exported]
    assert [(e["action"], e["project"], e["actor"]) for e in entries] == [
        ("delete", "beta-pkg", CLI),
        ("role", "alpha", CLI),
        ("role", "alpha", CLI),
        ("status", "alpha", CLI),
        ("yank", "alpha", CLI),
        ("upload", "alpha", "anonymous"),  # the sdist, last uploaded
        ("upload", "beta-pkg", "anonymous"),
        ("upload", "alpha", "anonymous"),
        ("upload", "alpha", "anonymous"),
    ]
    assert entries[1]["detail"] == "bob: no role" and entries[2]["detail"] == "bob: maintainer"
    assert entries[3]["detail"] == "deprecated: use beta"
    assert entries[4]["detail"].endswith(": broken") and entries[4]["version"] == "1.0"
    assert {e["address"] for e in entries} == {"local", "127.0.0.1"}

    table = admin(data, "audit", "--project", "Beta.Pkg").stdout.splitlines()
    assert [line.split("\t")[3:5] for line in table] == [
        ["delete", "beta-pkg"],
        ["upload", "beta-pkg"],
    ]
    assert admin(data, "audit", "--project", "nothing").stdout == "No audit entries.\n"
    assert len(admin(data, "audit", "--json", "--limit", "2").stdout.splitlines()) == 2

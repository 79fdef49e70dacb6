"""``ministry-admin team`` and ``token create --scope`` as an operator runs them.

The happy path with a running daemon is in ``test_auth_clients.py``; here,
the refusals and the clean-ups: a team that is a project's only owner is
not deleted without ``--force``, deleting it takes its roles (each change in
the audit log), roles name only teams and users that exist, and a read
token does not take ``--project``.
"""

from __future__ import annotations

from test_admin import admin


def test_teams_are_made_refused_and_deleted_with_their_roles(tmp_path):
    data = tmp_path / "data"
    admin(data, "user", "add", "alice", "--password-stdin", stdin="alice-pw\n")
    assert "Added team devs" in admin(data, "team", "add", "@devs").stdout
    taken = admin(data, "team", "add", "devs", ok=False)
    assert taken.stderr.strip() == "ministry-admin: team devs exists already"
    assert "Invalid team name" in admin(data, "team", "add", "de:vs", ok=False).stderr
    assert "no user ghost" in admin(data, "team", "add-member", "devs", "ghost", ok=False).stderr
    assert "no team ops" in admin(data, "team", "add-member", "ops", "alice", ok=False).stderr
    assert "not teams" in admin(data, "team", "add-member", "devs", "@devs", ok=False).stderr
    admin(data, "team", "add-member", "devs", "alice")
    missing = admin(data, "project", "add-owner", "demo", "@ops", ok=False)
    assert "no team ops" in missing.stderr
    admin(data, "project", "add-owner", "demo", "@devs")
    admin(data, "project", "add-maintainer", "other", "@devs")
    assert admin(data, "team", "list").stdout.strip() == (
        "@devs\talice\tdemo (owner), other (maintainer)"
    )

    refused = admin(data, "team", "delete", "devs", ok=False)
    assert "@devs is the only owner of demo" in refused.stderr
    deleted = admin(data, "team", "delete", "devs", "--force").stdout
    assert deleted.strip() == "Deleted team devs and its roles in demo, other"
    assert admin(data, "project", "owners", "demo").stdout.startswith("demo has no owner yet")
    assert admin(data, "team", "list").stdout.strip() == "No teams."
    history = admin(data, "audit").stdout.splitlines()
    actions = [(line.split("\t")[3], line.split("\t")[4], line.split("\t")[-1]) for line in history]
    assert actions[:3] == [
        ("role", "other", "@devs: no role (team deleted)"),
        ("role", "demo", "@devs: no role (team deleted)"),
        ("team", "@devs", "deleted"),
    ]
    assert ("team", "@devs", "alice added") in actions
    assert ("team", "@devs", "created") in actions


def test_read_tokens_are_made_listed_and_never_limited_to_projects(tmp_path):
    data = tmp_path / "data"
    admin(data, "user", "add", "alice", "--password-stdin", stdin="alice-pw\n")
    made = admin(data, "token", "create", "alice", "--scope", "read")
    assert "for installing only" in made.stderr
    token_id = made.stdout.strip().split("-")[1]
    admin(data, "token", "create", "alice")
    listed = admin(data, "token", "list").stdout.splitlines()
    assert [line.split("\t")[-1] for line in listed].count("read") == 1
    assert any(line.startswith(token_id) and line.endswith("\tread") for line in listed)
    limited = admin(data, "token", "create", "alice", "--scope", "read", "--project", "x", ok=False)
    assert "does not go with --scope read" in limited.stderr
    assert (
        "invalid choice" in admin(data, "token", "create", "alice", "--scope", "x", ok=False).stderr
    )

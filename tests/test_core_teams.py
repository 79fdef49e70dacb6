"""Issue 18's rules in the pure core: read-only tokens, and roles held by teams.

``decide`` is given the user's teams as the web layer reads them per
request; these tables pin what a member, a non-member and a read token may do.
"""

from __future__ import annotations

import pytest

from ministry.core.auth import Action, Identity, check_team_name, decide
from ministry.core.errors import BadRequest
from ministry.core.models import MAINTAINER, OWNER
from ministry.core.teams import Person, has_teams, holder, people, role_of, team_of

ALICE = Identity("alice")
ADMIN = Identity("root", admin=True)
READER = Identity("alice", token_id="t1", read_only=True)
ADMIN_READER = Identity("root", True, "t2", read_only=True)
DEVS_OWN = {"@devs": OWNER}
DEVS_MAINTAIN = {"bob": OWNER, "@devs": MAINTAINER}
DEVS = frozenset({"devs"})
OPS = frozenset({"ops"})


@pytest.mark.parametrize(
    ("identity", "action", "roles", "teams", "allowed", "reason"),
    [
        (ALICE, Action.UPLOAD, DEVS_OWN, DEVS, True, ""),
        (ALICE, Action.UPLOAD, DEVS_MAINTAIN, DEVS, True, ""),
        (ALICE, Action.YANK, DEVS_MAINTAIN, DEVS, True, ""),
        (ALICE, Action.SET_STATUS, DEVS_OWN, DEVS, True, ""),
        (ALICE, Action.SET_STATUS, DEVS_MAINTAIN, DEVS, False, "Only owners of demo"),
        (ALICE, Action.UPLOAD, DEVS_OWN, OPS, False, "alice is not an owner or maintainer"),
        (ALICE, Action.UPLOAD, DEVS_OWN, frozenset(), False, "not an owner or maintainer"),
        (ALICE, Action.DELETE, DEVS_OWN, DEVS, False, "Only administrators may delete"),
        # A read token installs, whoever its user is, and does nothing else.
        (READER, Action.READ, DEVS_OWN, DEVS, True, ""),
        (READER, Action.UPLOAD, DEVS_OWN, DEVS, False, "This token is read-only"),
        (READER, Action.UPLOAD, {"alice": OWNER}, frozenset(), False, "read-only"),
        (READER, Action.REGISTER, {}, frozenset(), False, "not register demo"),
        (READER, Action.YANK, {"alice": OWNER}, frozenset(), False, "not yank files in demo"),
        (ADMIN_READER, Action.DELETE, {}, frozenset(), False, "read-only"),
        (ADMIN, Action.UPLOAD, DEVS_OWN, frozenset(), True, ""),
    ],
)
def test_who_may_do_what_through_teams_and_scopes(identity, action, roles, teams, allowed, reason):
    decision = decide(identity, action, "demo", roles, teams=teams)
    assert decision.allowed is allowed
    assert reason in decision.reason
    assert decision.claims is False


def test_a_read_token_never_claims_a_new_project():
    """A new project goes to its first uploader, but not through a read token."""
    assert decide(ALICE, Action.UPLOAD, "new", {}).claims is True
    refused = decide(READER, Action.UPLOAD, "new", {})
    assert (refused.allowed, refused.claims) == (False, False)
    assert "without '--scope read'" in refused.reason


@pytest.mark.parametrize(
    ("username", "teams", "roles", "role"),
    [
        ("alice", frozenset(), {"alice": MAINTAINER}, MAINTAINER),
        ("alice", DEVS, {"alice": MAINTAINER, "@devs": OWNER}, OWNER),  # the best one counts
        ("alice", DEVS | OPS, {"@ops": MAINTAINER, "@devs": OWNER}, OWNER),
        ("alice", OPS, {"@devs": OWNER}, None),
        ("devs", frozenset(), {"@devs": OWNER}, None),  # a user named like a team is not it
        ("alice", frozenset(), {}, None),
    ],
)
def test_a_users_role_is_the_best_of_their_own_and_their_teams(username, teams, roles, role):
    assert role_of(username, teams, roles) == role


def test_team_holders_are_told_apart_from_users():
    assert holder("devs") == "@devs"
    assert team_of("@devs") == "devs"
    assert team_of("devs") is None
    assert has_teams({"alice": OWNER, "@devs": MAINTAINER}) is True
    assert has_teams({"alice": OWNER}) is False


@pytest.mark.parametrize(
    ("given", "name"), [("devs", "devs"), ("@devs", "devs"), ("a.b-c", "a.b-c")]
)
def test_team_names_are_user_names_with_an_optional_at(given, name):
    assert check_team_name(given) == name


@pytest.mark.parametrize("given", ["", "@", "@@devs", "-devs", "de vs", "dev:s", "x" * 65])
def test_bad_team_names_are_refused(given):
    with pytest.raises(BadRequest, match="Invalid team name"):
        check_team_name(given)


def test_a_page_lists_owners_first_and_teams_as_teams():
    listed = people({"zoe": OWNER, "@devs": MAINTAINER, "bob": MAINTAINER, "@ops": OWNER})
    assert listed == (
        Person("ops", OWNER, True),
        Person("zoe", OWNER, False),
        Person("bob", MAINTAINER, False),
        Person("devs", MAINTAINER, True),
    )

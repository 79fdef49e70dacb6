"""The pure rules of ``ministry.core.auth``, one table per rule."""

from __future__ import annotations

import base64
import hashlib

import bcrypt
import pytest

from ministry.core.auth import (
    DUMMY_HASH,
    Action,
    Credentials,
    Identity,
    check_username,
    decide,
    hash_password,
    new_token,
    parse_basic,
    parse_htpasswd,
    parse_token,
    token_digest,
    token_matches,
    verify_htpasswd,
    verify_password,
)
from ministry.core.errors import BadRequest, Unauthorized
from ministry.core.models import MAINTAINER, OWNER
from ministry.core.throttle import FailureThrottle


def basic(text: str, encoding: str = "utf-8") -> bytes:
    return b"Basic " + base64.b64encode(text.encode(encoding))


# -- Basic headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        (basic("alice:s3cret"), Credentials("alice", "s3cret")),
        (basic("alice:with:colons"), Credentials("alice", "with:colons")),
        (basic("alice:"), Credentials("alice", "")),
        (basic("__token__:ministry-x"), Credentials("__token__", "ministry-x")),
        (basic("zoë:pässword"), Credentials("zoë", "pässword")),
        (basic("zoë:pässword", "latin-1"), Credentials("zoë", "pässword")),
        (b"bAsIc " + base64.b64encode(b"a:b"), Credentials("a", "b")),
        (b"  Basic   " + base64.b64encode(b"a:b") + b"  ", Credentials("a", "b")),
    ],
)
def test_basic_credentials_are_read(header, expected):
    assert parse_basic(header) == expected


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (b"Bearer abc", "Only HTTP Basic"),
        (b"Basic", "no ':'"),
        (b"Basic not-base64!!", "not valid base64"),
        (b"Basic " + base64.b64encode(b"no-colon"), "no ':'"),
        (b"Digest username=x", "Only HTTP Basic"),
    ],
)
def test_unusable_basic_credentials_are_a_401(header, why):
    with pytest.raises(Unauthorized, match=why) as caught:
        parse_basic(header)
    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("alice", True),
        ("Bob.Smith_2-x", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("__token__", False),
        ("-dash", False),
        ("has:colon", False),
        ("has space", False),
        ("has@at", False),
        ("ünï", False),
    ],
)
def test_user_names(name, ok):
    if ok:
        assert check_username(name) == name
    else:
        with pytest.raises(BadRequest):
            check_username(name)


# -- passwords ---------------------------------------------------------------------

CHEAP = {"n": 2**4, "r": 1, "p": 1}  # the parameters are stored: tests may be quick


def test_a_password_hash_is_salted_and_carries_its_parameters():
    first, second = hash_password("pw", **CHEAP), hash_password("pw", **CHEAP)
    assert first != second  # a fresh salt each time
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16", "1", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert hash_password("pw").split("$")[1:4] == ["16384", "8", "1"]  # the default cost


@pytest.mark.parametrize(
    ("password", "stored", "ok"),
    [
        ("right", hash_password("right", **CHEAP), True),
        ("wrong", hash_password("right", **CHEAP), False),
        ("", hash_password("", **CHEAP), True),
        ("pässwörd ✓", hash_password("pässwörd ✓", **CHEAP), True),
        ("right", hash_password("right", n=2**14, r=8, p=1), True),
        ("right", "", False),
        ("right", "plain-text", False),
        ("right", "bcrypt$16$1$1$AAAA$AAAA", False),
        ("right", "scrypt$x$1$1$AAAA$AAAA", False),
        ("right", "scrypt$15$1$1$AAAA$AAAA", False),  # n not a power of two
        ("right", "scrypt$1099511627776$8$1$AAAA$AAAA", False),  # absurd memory
        ("right", "scrypt$16$1$1$%%%%$AAAA", False),
        ("x", DUMMY_HASH, False),
    ],
)
def test_passwords_are_verified(password, stored, ok):
    assert verify_password(password, stored) is ok


# -- tokens ------------------------------------------------------------------------


def test_a_new_token_parses_back_to_its_id_and_secret():
    made = new_token()
    token_id, secret = parse_token(made.text)
    assert token_id == made.id and len(token_id) == 16
    assert len(secret) == 64  # 256 bits
    assert made.digest == token_digest(secret) == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in made.digest
    assert token_matches(secret, made.digest)
    assert not token_matches(secret[:-1] + "0" if secret[-1] != "0" else "1", made.digest)
    assert new_token().text != made.text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "s3cret",
        "pypi-AgEIcHlwaS5vcmc",
        "ministry-0123456789abcdef",
        "ministry-0123456789abcdef-" + "a" * 63,
        "ministry-0123456789ABCDEF-" + "a" * 64,
        "ministry-0123456789abcdef-" + "g" * 64,
        "other-0123456789abcdef-" + "a" * 64,
    ],
)
def test_other_texts_are_not_tokens(text):
    assert parse_token(text) is None


# -- htpasswd ------------------------------------------------------------------------

BCRYPT_2B = bcrypt.hashpw(b"bcrypt-pw", bcrypt.gensalt(4)).decode()
BCRYPT_2Y = "$2y$" + BCRYPT_2B[4:]  # what Apache's htpasswd -B writes
SHA = "{SHA}" + base64.b64encode(hashlib.sha1(b"sha-pw").digest()).decode()


def test_htpasswd_files_keep_bcrypt_and_sha_entries_and_report_the_rest():
    parsed = parse_htpasswd(
        "# a comment\n"
        f"bea:{BCRYPT_2Y}\n"
        "\n"
        f"  sam:{SHA}  \n"
        "mel:$apr1$abcdefgh$0123456789012345678901\n"
        "pat:plain\n"
        "no-colon\n"
        f"bob:{BCRYPT_2B}\n"
    )
    assert parsed.entries == {"bea": BCRYPT_2Y, "sam": SHA, "bob": BCRYPT_2B}
    assert parsed.problems == (
        "line 5: user 'mel' has an unsupported hash (use bcrypt, htpasswd -B, or SHA, htpasswd -s)",
        "line 6: user 'pat' has an unsupported hash (use bcrypt, htpasswd -B, or SHA, htpasswd -s)",
        "line 7: not 'user:hash'",
    )


@pytest.mark.parametrize(
    ("password", "stored", "ok"),
    [
        ("bcrypt-pw", BCRYPT_2Y, True),
        ("bcrypt-pw", BCRYPT_2B, True),
        ("bcrypt-pw", "$2a$" + BCRYPT_2B[4:], True),
        ("wrong", BCRYPT_2Y, False),
        ("sha-pw", SHA, True),
        ("wrong", SHA, False),
        ("x" * 100, "$2b$" + bcrypt.hashpw(b"x" * 72, bcrypt.gensalt(4)).decode()[4:], True),
        ("bcrypt-pw", "$2y$04$broken", False),
        ("plain", "plain", False),
        ("pw", "$apr1$abc$def", False),
    ],
)
def test_htpasswd_entries_are_verified(password, stored, ok):
    assert verify_htpasswd(password, stored) is ok


# -- permissions -------------------------------------------------------------------

ALICE = Identity("alice")
ADMIN = Identity("root", admin=True)
ALICE_TOKEN_DEMO = Identity("alice", token_id="t1", token_projects=frozenset({"demo"}))
ADMIN_TOKEN_DEMO = Identity("root", True, "t2", frozenset({"demo"}))
OWNED = {"alice": OWNER}
MAINTAINED = {"bob": OWNER, "alice": MAINTAINER}
OTHERS = {"bob": OWNER}
NOBODY: dict[str, str] = {}


@pytest.mark.parametrize(
    ("identity", "action", "project", "roles", "allowed", "claims", "reason"),
    [
        (ALICE, Action.READ, "demo", OTHERS, True, False, ""),
        (ALICE, Action.UPLOAD, "demo", OWNED, True, False, ""),
        (ALICE, Action.UPLOAD, "demo", MAINTAINED, True, False, ""),
        (ALICE, Action.UPLOAD, "demo", NOBODY, True, True, ""),
        (ALICE, Action.REGISTER, "demo", NOBODY, True, True, ""),
        (ALICE, Action.UPLOAD, "demo", OTHERS, False, False, "alice is not an owner or maint"),
        (ALICE, Action.REGISTER, "demo", OTHERS, False, False, "may not register it"),
        (ALICE, Action.YANK, "demo", MAINTAINED, True, False, ""),
        (ALICE, Action.YANK, "demo", OTHERS, False, False, "may not yank files in it"),
        (ALICE, Action.YANK, "demo", NOBODY, False, False, "demo has no owner yet"),
        (ALICE, Action.DELETE, "demo", OWNED, False, False, "Only administrators may delete"),
        (ADMIN, Action.UPLOAD, "demo", OTHERS, True, False, ""),
        (ADMIN, Action.UPLOAD, "demo", NOBODY, True, True, ""),
        (ADMIN, Action.YANK, "demo", NOBODY, True, False, ""),
        (ADMIN, Action.DELETE, "demo", OTHERS, True, False, ""),
        (ALICE_TOKEN_DEMO, Action.UPLOAD, "demo", OWNED, True, False, ""),
        (ALICE_TOKEN_DEMO, Action.UPLOAD, "other", OWNED, False, False, "limited to demo"),
        (ALICE_TOKEN_DEMO, Action.UPLOAD, "other", NOBODY, False, False, "limited to demo"),
        (ALICE_TOKEN_DEMO, Action.READ, "other", NOBODY, True, False, ""),
        (ADMIN_TOKEN_DEMO, Action.DELETE, "other", OTHERS, False, False, "limited to demo"),
        (ADMIN_TOKEN_DEMO, Action.DELETE, "demo", OTHERS, True, False, ""),
    ],
)
def test_who_may_do_what(identity, action, project, roles, allowed, claims, reason):
    decision = decide(identity, action, project, roles)
    assert (decision.allowed, decision.claims) == (allowed, claims)
    assert reason in decision.reason
    assert bool(decision.reason) is not allowed


@pytest.mark.parametrize(
    ("identity", "action", "allowed", "reason"),
    [
        (ALICE, Action.UPLOAD, False, "'ministry-admin project add-owner demo alice'"),
        (ALICE, Action.REGISTER, False, "only an administrator may register it"),
        (ALICE, Action.YANK, False, "published while this index took uploads from anyone"),
        (ALICE_TOKEN_DEMO, Action.UPLOAD, False, "add-owner demo alice"),
        (ADMIN, Action.UPLOAD, True, ""),
        (ADMIN, Action.YANK, True, ""),
    ],
)
def test_a_hosted_project_without_owner_is_not_the_first_comers(identity, action, allowed, reason):
    """Published while the index was open: no user takes it over by uploading, not even an admin."""
    decision = decide(identity, action, "demo", NOBODY, exists=True)
    assert (decision.allowed, decision.claims) == (allowed, False)
    assert reason in decision.reason


# -- slowing down failures ---------------------------------------------------------


def test_failures_cost_nothing_at_first_then_double_up_to_a_cap():
    throttle = FailureThrottle(free=3, base=0.25, cap=2.0, decay=60.0)
    delays = []
    for _ in range(8):
        delays.append(throttle.delay("10.0.0.1", 0.0))
        throttle.failed("10.0.0.1", 0.0)
    assert delays == [0, 0, 0, 0, 0.25, 0.5, 1.0, 2.0]
    assert throttle.delay("10.0.0.1", 0.0) == 2.0
    assert throttle.delay("10.0.0.2", 0.0) == 0  # per address


@pytest.mark.parametrize(
    ("elapsed", "delay"),
    [(0, 1.0), (59, 1.0), (60, 0.5), (120, 0.25), (180, 0.0), (10_000, 0.0)],
)
def test_failures_decay_one_per_period(elapsed, delay):
    throttle = FailureThrottle(free=3, base=0.25, cap=5.0, decay=60.0)
    for _ in range(6):
        throttle.failed("a", 0.0)
    assert throttle.delay("a", elapsed) == delay


def test_forgotten_addresses_free_their_memory_and_the_table_is_bounded():
    throttle = FailureThrottle(decay=60.0, max_entries=3)
    throttle.failed("a", 0.0)
    throttle.delay("a", 61.0)
    assert len(throttle) == 0
    for address in ["a", "b", "c", "d", "e"]:
        throttle.failed(address, 0.0)
    assert len(throttle) == 3
    for _ in range(5):
        throttle.failed("e", 0.0)
    assert throttle.delay("e", 0.0) > 0
    assert throttle.delay("a", 0.0) == 0  # forgotten first: least recently failing

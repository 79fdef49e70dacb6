"""Who is asking and what they may do: the pure rules of authentication.

No I/O and no Twisted here. The web layer reads the store, runs the slow
hashes on a thread and waits out the delays; everything below is a function
of its arguments (the clock included), so that each rule is pinned by a table
of cases in ``tests/test_core_auth.py``:

- ``Authorization: Basic`` parsing;
- password hashes: scrypt, salted, with its parameters stored beside it;
- API tokens: their format, and why a fast hash is right for them;
- Apache htpasswd files (bcrypt and ``{SHA}`` entries), for teams coming
  from pypiserver;
- who may do what to a project (:func:`decide`), as a user, through a
  team (``ministry.core.teams``), or with a read-only token.

Slowing down an address that keeps failing is ``ministry.core.throttle``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import bcrypt

from ministry.core.errors import BadRequest, Unauthorized
from ministry.core.models import MAINTAINER, OWNER
from ministry.core.teams import TEAM_PREFIX, role_of

#: The username that says "the password is an API token", as on PyPI.
TOKEN_USERNAME = "__token__"

#: The realm of every ``WWW-Authenticate`` challenge.
REALM = "ministry"
CHALLENGE = f'Basic realm="{REALM}"'

# -- Basic credentials -----------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """A username and password from an ``Authorization: Basic`` header."""

    username: str
    password: str


def parse_basic(header: bytes | None) -> Credentials | None:
    """The credentials in an ``Authorization`` header value; None when there is none.

    A header that is present but not usable Basic credentials is refused
    (401) rather than ignored, so that a client sending a bearer token or a
    mangled header learns why it is not let in. RFC 7617 allows UTF-8; older
    clients send latin-1, which is tried second.
    """
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        raise Unauthorized("Only HTTP Basic credentials are accepted.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("The Basic credentials are not valid base64.") from None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")
    username, colon, password = text.partition(":")
    if not colon:
        raise Unauthorized("The Basic credentials have no ':' between username and password.")
    return Credentials(username, password)


# -- user names ------------------------------------------------------------------

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_username(name: str) -> str:
    """Return ``name`` if it can be a user name; refuse anything else.

    No ':' (Basic credentials split on the first one), nothing that needs
    quoting in a URL's userinfo, and never ``__token__``.
    """
    if not _USERNAME.fullmatch(name):
        raise BadRequest(
            f"Invalid user name {name[:80]!r}: use up to 64 ASCII letters, digits, '.', '_' "
            "and '-', starting with a letter or digit."
        )
    return name


def check_team_name(name: str) -> str:
    """A team's name without its '@' (given with or without one), if it could be a
    user's name; refused otherwise. See ``ministry.core.teams``."""
    bare = name.removeprefix(TEAM_PREFIX)
    if not _USERNAME.fullmatch(bare):
        raise BadRequest(
            f"Invalid team name {name[:80]!r}: use up to 64 ASCII letters, digits, '.', '_' "
            "and '-', starting with a letter or digit, after an optional '@'."
        )
    return bare


# -- passwords -------------------------------------------------------------------

#: scrypt cost: 2**14 * 8 * 128 bytes = 16 MiB and some 50 ms per check, the
#: parameters Python's documentation gives for interactive logins. They are
#: stored with each hash, so raising them later leaves old hashes readable.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_SCRYPT_MAX_N = 2**20  # refuse stored parameters that would exhaust memory


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # OpenSSL's default memory cap (32 MiB) is too small for some valid
    # parameters: allow what they need, twice over.
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r * p, dklen=32
    )


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), with a fresh random salt.

    Slow on purpose (see :data:`SCRYPT_N`): run it off the reactor thread.
    """
    salt = secrets.token_bytes(16)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(_scrypt(password, salt, n, r, p))}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` result; constant time.

    Anything unreadable is simply no match: a damaged record must lock its
    user out, not let everyone in.
    """
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        cost = int(n), int(r), int(p)
        salt_bytes, expected_bytes = base64.b64decode(salt), base64.b64decode(expected)
    except ValueError:
        return False
    if scheme != "scrypt" or not (1 < cost[0] <= _SCRYPT_MAX_N) or min(cost) < 1:
        return False
    try:
        actual = _scrypt(password, salt_bytes, *cost)
    except ValueError:  # n not a power of two, or more memory than allowed
        return False
    return hmac.compare_digest(actual, expected_bytes)


#: Checked when the user name is unknown, so that a wrong name costs as much
#: time as a wrong password and the answer time does not reveal which names exist.
DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(bytes(16))}${_b64(bytes(32))}"


# -- API tokens ------------------------------------------------------------------

TOKEN_PREFIX = "ministry-"
_TOKEN = re.compile(r"ministry-([0-9a-f]{16})-([0-9a-f]{64})")


@dataclass(frozen=True)
class NewToken:
    """A token just made: the text shown once to its owner, and what is stored."""

    text: str
    id: str
    digest: str


def new_token() -> NewToken:
    """``ministry-<16 hex id>-<64 hex secret>``: 256 random bits of secret.

    The id is public (it names the token in lists and revocations, and finds
    its record in one look-up); only the secret's digest is stored.
    """
    token_id, secret = secrets.token_hex(8), secrets.token_hex(32)
    return NewToken(f"{TOKEN_PREFIX}{token_id}-{secret}", token_id, token_digest(secret))


def parse_token(text: str) -> tuple[str, str] | None:
    """(id, secret) of a token's text, or None if it is not one of ours."""
    match = _TOKEN.fullmatch(text.strip())
    return (match.group(1), match.group(2)) if match else None


def token_digest(secret: str) -> str:
    """The stored form of a token's secret: its sha256, in hex.

    A fast hash is right here, unlike for passwords. Slow hashes exist to
    make guessing a *low-entropy* secret from a leaked hash expensive; a
    token's secret is 256 random bits, which no amount of fast hashing can
    enumerate, so scrypt would only cost every request 50 ms and protect
    nothing more. sha256 also lets a token be checked on the reactor thread.
    """
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def token_matches(secret: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(secret), digest)


# -- htpasswd files --------------------------------------------------------------


@dataclass(frozen=True)
class Htpasswd:
    """The usable entries of an htpasswd file, and what was wrong with the rest."""

    entries: Mapping[str, str]  # user -> hash
    problems: tuple[str, ...] = ()


_BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")
_SHA_PREFIX = "{SHA}"


def parse_htpasswd(text: str) -> Htpasswd:
    """Read ``user:hash`` lines; blank lines and ``#`` comments are skipped.

    Only bcrypt (``$2y$``, ``$2b$``, ``$2a$``) and ``{SHA}`` entries are
    kept. Apache's MD5 (``$apr1$``), crypt and plain-text entries are
    reported in ``problems`` and never match: guessing at them could let in
    a password that was never meant to work.
    """
    entries: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, hashed = line.partition(":")
        if not colon or not user:
            problems.append(f"line {number}: not 'user:hash'")
        elif not hashed.startswith((*_BCRYPT_PREFIXES, _SHA_PREFIX)):
            problems.append(
                f"line {number}: user {user!r} has an unsupported hash "
                "(use bcrypt, htpasswd -B, or SHA, htpasswd -s)"
            )
        else:
            entries[user] = hashed
    return Htpasswd(entries, tuple(problems))


def verify_htpasswd(password: str, hashed: str) -> bool:
    """Whether ``password`` matches an htpasswd entry's hash; slow for bcrypt."""
    secret = password.encode("utf-8")
    if hashed.startswith(_SHA_PREFIX):
        expected = base64.b64encode(hashlib.sha1(secret).digest()).decode("ascii")
        return hmac.compare_digest(hashed[len(_SHA_PREFIX) :], expected)
    if hashed.startswith(_BCRYPT_PREFIXES):
        try:
            # bcrypt reads 72 bytes at most (and the package refuses more).
            return bcrypt.checkpw(secret[:72], hashed.encode("ascii"))
        except ValueError:  # a malformed hash
            return False
    return False


# -- permissions -----------------------------------------------------------------


class Action(StrEnum):
    """What a request wants to do; the value is the verb used in refusals."""

    READ = "read"
    UPLOAD = "upload to"
    REGISTER = "register"
    YANK = "yank files in"
    DELETE = "delete files in"
    SET_STATUS = "set the status of"


@dataclass(frozen=True)
class Identity:
    """Who a request is from, once its credentials have been checked."""

    username: str
    admin: bool = False
    #: Set when the credentials were a token: its id.
    token_id: str | None = None
    #: The canonical project names a token is limited to; empty: no limit.
    token_projects: frozenset[str] = frozenset()
    #: A token with the read scope: it may install, and do nothing else.
    read_only: bool = False


@dataclass(frozen=True)
class Decision:
    """Whether an action is allowed, why not, and whether it makes its actor owner."""

    allowed: bool
    reason: str = ""
    #: The project has no owner yet and this action makes the actor its owner.
    claims: bool = False


def decide(
    identity: Identity,
    action: Action,
    project: str,
    roles: Mapping[str, str],
    exists: bool = False,
    teams: frozenset[str] = frozenset(),
) -> Decision:
    """May ``identity`` do ``action`` to ``project``, whose roles are ``roles``?

    ``exists``: the project is already hosted (it has files or a registration).
    ``teams``: the teams the user is a member of, now.

    - Reading needs nothing more than valid credentials: read protection is
      for the whole index (``--private``), not per project.
    - A read-only token reads and does nothing else, whoever its user is.
    - A token limited to projects can act on those alone, whoever its user is.
    - Deleting is for administrators only; setting a project's status
      (PEP 792) for its owners and administrators.
    - Administrators may do everything else; owners and maintainers may
      upload to, register and yank in their projects. A team's role is each
      of its members' (the best of a user's own and their teams' counts).
    - A new project goes to whoever uploads to or registers it first. One
      that exists without any owner or maintainer (uploaded while the index
      was open, before users existed) is left to administrators: the first
      user to come by must not take over a project others published. An
      administrator names its owner (``ministry-admin project add-owner``).
    """
    if action is Action.READ:
        return Decision(True)
    if identity.read_only:
        return Decision(
            False,
            f"This token is read-only: it may install from this index, not {action} {project}. "
            "Upload with a token made without '--scope read'.",
        )
    if identity.token_projects and project not in identity.token_projects:
        limited = ", ".join(sorted(identity.token_projects))
        return Decision(
            False, f"This token is limited to {limited}: it may not {action} {project}."
        )
    if action is Action.DELETE:
        if identity.admin:
            return Decision(True)
        return Decision(
            False, f"Only administrators may delete files; {identity.username} is not one."
        )
    role = role_of(identity.username, teams, roles)
    if action is Action.SET_STATUS and not identity.admin and role != OWNER:
        return Decision(
            False,
            f"Only owners of {project} and administrators may set its status; "
            f"{identity.username} is neither.",
        )
    claims = not roles and not exists and action in (Action.UPLOAD, Action.REGISTER)
    if identity.admin or claims or role in (OWNER, MAINTAINER):
        return Decision(True, claims=claims)
    if not roles and exists:
        return Decision(
            False,
            f"{project} has no owner (it was published while this index took uploads from "
            f"anyone): only an administrator may {action} it. Ask one to make you its owner "
            f"with 'ministry-admin project add-owner {project} {identity.username}'.",
        )
    if not roles:
        return Decision(
            False, f"{project} has no owner yet: only an administrator may {action} it."
        )
    return Decision(
        False,
        f"{identity.username} is not an owner or maintainer of {project}, so may not {action} it.",
    )

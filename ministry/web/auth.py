"""Credentials checked and permissions enforced, for every web component.

The rules are pure and live in ``ministry.core.auth``; this is where they
meet requests, the store and time:

- :meth:`Authenticator.authenticate` turns an ``Authorization`` header into
  an :class:`Identity` (store users, tokens, or an htpasswd file), running the
  slow hashes on a thread, after making an address that keeps failing wait;
- :meth:`Authenticator.authorize` answers 401 or 403, or lets an upload
  through unchecked while the index is still open (no users, no htpasswd);
  a name reserved for this index (``--reserve``) gets its first owner only
  from an administrator (``NamePolicy.claim_refusal``);
- :meth:`Authenticator.read_guard` protects every page but ``/health`` when
  the index is ``--private``;
- :meth:`Authenticator.uploads_need_credentials` answers at once, from what
  the store said last, so that an anonymous upload is refused from its head,
  before its body is read (``ministry.web.http.bodies``).

Addresses (for the throttle and the log) are the request's client address:
behind a ``--trusted-proxy``, the client it forwards for (``ministry.web.http.clients``).

A successful check is remembered for :data:`REMEMBER_SECONDS` under the
sha256 of its header, so the read hot path costs a hash and a dictionary
look-up, not 50 ms of scrypt, per request. The price: a removed user, a new
password or a revoked token takes effect within that time, not at once.
Roles and team memberships are not remembered: every upload, yank or status
change reads the project's roles, and the user's teams when a team holds
one, so taking a role or a membership away takes effect at once.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict

from twisted.application.service import Service
from twisted.internet.defer import ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource, getChildForRequest
from twisted.web.server import NOT_DONE_YET

from ministry.config import Settings
from ministry.core.auth import (
    DUMMY_HASH,
    TOKEN_USERNAME,
    Action,
    Identity,
    decide,
    parse_basic,
    parse_token,
    token_matches,
    verify_htpasswd,
    verify_password,
)
from ministry.core.errors import Forbidden, StoreUnavailable, Unauthorized
from ministry.core.models import OWNER, READ_SCOPE
from ministry.core.name_policy import NamePolicy
from ministry.core.teams import has_teams, holder
from ministry.core.throttle import FailureThrottle
from ministry.interfaces import IMetadataStore
from ministry.web.htpasswd_file import HtpasswdFile
from ministry.web.http.responses import finish_refused

log = Logger()

#: How long a successful credential check is reused (see the module docstring).
REMEMBER_SECONDS = 30.0
#: How many distinct successful headers are remembered at most.
REMEMBER_ENTRIES = 1024
#: How often, at most, an early refusal of an anonymous upload asks the store again.
OPEN_RECHECK_SECONDS = 1.0
#: How many owner-less projects the start-up warning names.
UNOWNED_LISTED = 10

#: The paths that stay open on a private index: probes carry no credentials.
OPEN_PATHS = frozenset({b"health"})


class Authenticator(Service):
    """Who a request is from, and whether they may do what it asks."""

    def __init__(
        self,
        store: IMetadataStore,
        clock: IReactorTime,
        htpasswd: HtpasswdFile | None,
        private: bool,
        policy: NamePolicy,
    ) -> None:
        self.store = store
        self.htpasswd = htpasswd
        self.private = private
        self.policy = policy
        self.throttle = FailureThrottle()
        self._clock = clock
        #: What :meth:`is_open` said last (open until the store has answered once).
        self._known_open = True
        self._open_checked = -OPEN_RECHECK_SECONDS
        self._remembered: OrderedDict[bytes, tuple[Identity, float]] = OrderedDict()

    @classmethod
    def from_settings(
        cls, settings: Settings, store: IMetadataStore, clock: IReactorTime
    ) -> Authenticator:
        """The authenticator ``--private`` and ``--htpasswd`` ask for (no I/O yet).

        ``clock`` times the throttle's waits, the memory of good credentials
        and the htpasswd file's re-reads.
        """
        path = settings.htpasswd
        htpasswd = HtpasswdFile(os.path.abspath(path), clock) if path else None
        return cls(store, clock, htpasswd, settings.private, settings.name_policy())

    # -- start-up ----------------------------------------------------------------

    def startService(self) -> None:
        """Say in the log, once the store answers, who may upload and read."""
        super().startService()
        #: Fires once the report is written: start-up does not wait for it, tests do.
        self.reported = ensureDeferred(self._report_configuration())
        self.reported.addErrback(_log_unchecked)

    async def _report_configuration(self) -> None:
        if self.htpasswd is not None:
            self.htpasswd.entries()
        if await self.is_open():
            log.warn(
                "No users exist and no --htpasswd is set: anyone who can reach this index "
                "may upload to it. Add a user with 'ministry-admin user add NAME'."
            )
            if self.private:
                log.error(
                    "--private is set but no users exist: every request but /health is "
                    "refused until a user is added."
                )
            return
        unowned = await self.unowned_projects()
        if unowned:
            log.warn(
                "{count} hosted projects have no owner or maintainer (published while the "
                "index took uploads from anyone): only administrators may upload to them "
                "until one is named with 'ministry-admin project add-owner PROJECT USER'. "
                "First of them: {first}",
                count=len(unowned),
                first=", ".join(unowned[:UNOWNED_LISTED]),
            )

    async def unowned_projects(self) -> list[str]:
        """Hosted projects in which nobody holds a role, by name."""
        names = {user.name for user in await self.store.list_users()}
        if self.htpasswd is not None:
            names |= set(self.htpasswd.entries().entries)
        names |= {holder(team.name) for team in await self.store.list_teams()}
        held: set[str] = set()
        for name in names:
            held |= set(await self.store.user_roles(name))
        projects = await self.store.list_projects()
        return sorted(project.name for project in projects if project.name not in held)

    async def is_open(self) -> bool:
        """Whether uploads need no credentials: no users, and no htpasswd file named."""
        self._known_open = self.htpasswd is None and not await self.store.has_users()
        return self._known_open

    def uploads_need_credentials(self) -> bool:
        """Whether an upload without credentials is refused, as last known, without waiting.

        Every upload asks the store again (:meth:`is_open`), so this follows
        users being added. When it says yes, the store is asked again (at
        most every :data:`OPEN_RECHECK_SECONDS`), so that once the last user
        is removed, anonymous uploads are refused early no more than briefly.
        """
        if self.htpasswd is not None:
            return True
        if self._known_open:
            return False
        now = self._clock.seconds()
        if now - self._open_checked >= OPEN_RECHECK_SECONDS:
            self._open_checked = now
            ensureDeferred(self.is_open()).addErrback(_log_unchecked)
        return True

    # -- authentication ------------------------------------------------------------

    def remembered(self, request: IRequest) -> Identity | None:
        """The identity of a header checked successfully a moment ago, or None."""
        header = request.getHeader(b"authorization")
        if header is None:
            return None
        key = hashlib.sha256(header).digest()
        found = self._remembered.get(key)
        if found is None:
            return None
        identity, until = found
        if self._clock.seconds() >= until:
            del self._remembered[key]
            return None
        return identity

    def _remember(self, header: bytes, identity: Identity) -> None:
        key = hashlib.sha256(header).digest()
        self._remembered[key] = (identity, self._clock.seconds() + REMEMBER_SECONDS)
        self._remembered.move_to_end(key)
        while len(self._remembered) > REMEMBER_ENTRIES:
            self._remembered.popitem(last=False)

    async def authenticate(self, request: IRequest) -> Identity | None:
        """The identity behind the request's credentials; None if it sent none.

        Wrong credentials are a 401, after a delay that grows with the
        address's recent failures.
        """
        header = request.getHeader(b"authorization")
        credentials = parse_basic(header)
        if credentials is None:
            return None
        identity = self.remembered(request)
        if identity is not None:
            return identity
        address = _address(request)
        delay = self.throttle.delay(address, self._clock.seconds())
        if delay:
            await deferLater(self._clock, delay, lambda: None)
        if credentials.username == TOKEN_USERNAME:
            identity = await self._token_identity(credentials.password)
            failure = "The token is not valid: it is malformed, unknown or revoked."
        else:
            identity = await self._password_identity(credentials.username, credentials.password)
            failure = "Wrong username or password."
        if identity is None:
            self.throttle.failed(address, self._clock.seconds())
            log.info("Failed login from {address}", address=address)
            raise Unauthorized(failure)
        self._remember(header, identity)
        return identity

    async def _token_identity(self, text: str) -> Identity | None:
        parsed = parse_token(text)
        if parsed is None:
            return None
        token_id, secret = parsed
        token = await self.store.get_token(token_id)
        if token is None or not token_matches(secret, token.digest):
            return None
        user = await self.store.get_user(token.username)
        if user is None:
            return None
        read_only = token.scope == READ_SCOPE
        return Identity(user.name, user.admin, token.id, frozenset(token.projects), read_only)

    async def _password_identity(self, username: str, password: str) -> Identity | None:
        user = await self.store.get_user(username)
        if user is not None:
            if await deferToThread(verify_password, password, user.password_hash):
                return Identity(user.name, user.admin)
            return None
        entries = self.htpasswd.entries().entries if self.htpasswd is not None else {}
        hashed = entries.get(username)
        if hashed is not None:
            if await deferToThread(verify_htpasswd, password, hashed):
                return Identity(username)
            return None
        # As slow as a real check, so the answer's timing tells no names.
        await deferToThread(verify_password, password, DUMMY_HASH)
        return None

    async def require(self, request: IRequest) -> Identity:
        """The request's identity; a 401 if it sent no credentials."""
        identity = await self.authenticate(request)
        if identity is None:
            raise Unauthorized("This needs credentials: a username and password, or a token.")
        return identity

    # -- authorisation -------------------------------------------------------------

    async def authorize(
        self, request: IRequest, action: Action, project: str, *, open_ok: bool = False
    ) -> Identity | None:
        """The identity allowed to do ``action`` to ``project``, or a 401 or 403.

        With ``open_ok`` (uploads and registrations) an open index lets
        anyone through, and this fires with None.
        """
        if open_ok and await self.is_open():
            return None
        identity = await self.require(request)
        roles = await self.store.get_roles(project)
        # Whether it is hosted matters only to a project nobody holds a role in.
        exists = not roles and await self.store.get_project(project) is not None
        # Asked every time, never remembered: a member removed loses access at once.
        teams = await self.store.user_teams(identity.username) if has_teams(roles) else frozenset()
        await self._check(identity, action, project, roles, exists, teams)
        return identity

    async def claim(self, identity: Identity | None, action: Action, project: str) -> bool:
        """Make ``identity`` owner of ``project`` if it has none, atomically; True if it did.

        If another user claimed it first, in a race, this is a 403.
        """
        if identity is None:
            return False
        roles = await self.store.get_roles(project)
        if roles or await self.store.get_project(project) is not None:
            return False  # held, or hosted without an owner: an administrator's to give
        roles = await self.store.claim_project(project, identity.username)
        await self._check(identity, action, project, roles)
        if roles.get(identity.username) != OWNER:
            return False  # another user won a race (and this one is an admin)
        log.info("{user} now owns {project}", user=identity.username, project=project)
        return True

    async def _check(
        self,
        identity: Identity,
        action: Action,
        project: str,
        roles: dict[str, str],
        exists: bool = False,
        teams: frozenset[str] = frozenset(),
    ) -> None:
        decision = decide(identity, action, project, roles, exists, teams)
        if not decision.allowed:
            raise Forbidden(decision.reason)
        refusal = self.policy.claim_refusal(project, identity.admin) if decision.claims else None
        if refusal is not None:
            raise Forbidden(refusal)

    # -- read protection ---------------------------------------------------------

    def read_guard(self, request: IRequest, root: IResource) -> IResource | None:
        """For a private index: None if the request may go on at once, else a
        resource that checks its credentials and then serves it.

        Called before traversal, so ``request.postpath`` is the whole path.
        """
        first = request.postpath[0] if request.postpath else b""
        if not self.private or first in OPEN_PATHS:
            return None
        if self.remembered(request) is not None:
            return None
        return _CheckThenServe(self, root)


class _CheckThenServe(Resource):
    """Checks a request's credentials, then serves it from the root as usual."""

    isLeaf = True

    def __init__(self, authenticator: Authenticator, root: IResource) -> None:
        super().__init__()
        self.authenticator = authenticator
        self.root = root

    def render(self, request: IRequest) -> object:
        lost: list[object] = []
        request.notifyFinish().addErrback(lost.append)
        d = ensureDeferred(self.authenticator.require(request))
        d.addCallbacks(
            lambda _: self._serve(request, lost), lambda f: self._refuse(request, f, lost)
        )
        return NOT_DONE_YET

    def _serve(self, request: IRequest, lost: list[object]) -> None:
        if not lost:
            request.render(getChildForRequest(self.root, request))

    def _refuse(self, request: IRequest, failure: Failure, lost: list[object]) -> None:
        if lost:
            return
        finish_refused(request, failure, "Checking credentials")


def _log_unchecked(failure: Failure) -> None:
    if failure.check(StoreUnavailable):
        log.warn("Could not check the users at start-up: {why}", why=failure.value.message)
    else:
        log.failure("Could not check the users at start-up", failure)


def _address(request: IRequest) -> str:
    client = request.getClientAddress()
    return getattr(client, "host", None) or str(client)

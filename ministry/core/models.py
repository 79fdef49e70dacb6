"""The records the index keeps, shared by the stores, the core and the web.

They are plain frozen dataclasses so that both stores can serialise them the
same way (``to_dict`` / ``from_dict``) and the contract tests can compare them
with ``==``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

WHEEL = "bdist_wheel"
SDIST = "sdist"

#: Where a file came from: uploaded here, fetched through the proxy, or
#: fetched ahead of time by the mirror.
ORIGINS = ("upload", "proxy", "mirror")

#: What a wheel's URL ends with to name its core metadata (PEP 658), both
#: under ``/packages/`` and in a cache of upstream files.
METADATA_SUFFIX = ".metadata"

#: What the blob key of a file's PEP 740 provenance ends with.
PROVENANCE_SUFFIX = ".provenance"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, with microseconds."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``, the form PEP 700 and pip expect."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time`; accepts any ISO 8601 form."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is UTC:  # what format_time writes: 100,000 of them at start-up
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_info(text: str | bytes) -> dict[str, Any]:
    """A project's stored ``info`` JSON; most are empty, and start-up reads them all."""
    return {} if text in ("{}", b"{}") else json.loads(text)


class _Serialised:
    """``to_dict`` / ``from_dict`` for the records, one rule for all of them.

    JSON (what both stores write) has neither datetimes nor tuples: the
    fields named in ``_TIMES`` go out as :func:`format_time` strings and
    those in ``_TUPLES`` as lists, and come back as what they were. Keeping
    the rule in one place is what lets the stores and the contract tests
    rely on ``from_dict(record.to_dict()) == record`` for every record.
    """

    #: No ``__dict__``: the records declare slots (an index of 100,000 projects
    #: holds a ProjectRecord each, and a big project's page 10,000 FileRecords).
    __slots__ = ()
    _TIMES: ClassVar[tuple[str, ...]] = ()
    _TUPLES: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)  # every subclass is a dataclass
        for name in self._TUPLES:
            data[name] = list(data[name])
        for name in self._TIMES:
            data[name] = format_time(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        values = dict(data)
        for name in cls._TUPLES:
            values[name] = tuple(values[name])
        for name in cls._TIMES:
            values[name] = parse_time(values[name])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class FileRecord(_Serialised):
    """One distribution file of a project, as stored and as served."""

    _TIMES = ("upload_time",)

    project: str  # canonical (normalised) project name
    filename: str
    version: str  # the version string from the archive metadata
    packagetype: str  # WHEEL or SDIST
    size: int
    sha256: str
    blake2b_256: str
    md5: str
    upload_time: datetime
    requires_python: str | None = None
    python_version: str = ""  # the upload form's pyversion: "py3", "source", ...
    #: sha256 of the core metadata bytes (a wheel's METADATA, an sdist's
    #: PKG-INFO), or None when none were extracted.
    metadata_sha256: str | None = None
    #: None: not yanked. A string, possibly empty: yanked, with that reason.
    yanked: str | None = None
    origin: str = "upload"
    #: sha256 of the PEP 740 provenance stored at :attr:`provenance_key`, or
    #: None when the upload came without attestations.
    provenance_sha256: str | None = None
    #: Who signed the provenance, as its Sigstore certificates say, when every
    #: signature verified offline (``ministry.core.signatures``); else None.
    provenance_signer: str | None = None
    #: Why a provenance's signatures did not verify; None when they did, or
    #: when there is no provenance.
    provenance_problem: str | None = None
    #: A proxied file whose upstream offers its PEP 740 provenance: served
    #: through the Integrity API too, fetched and kept beside the cached file.
    provenance_upstream: bool = False
    #: The user who uploaded it here; None for proxied and mirrored files, for
    #: uploads to an index open to anyone, and for records older than the field.
    uploader: str | None = None

    @property
    def has_provenance(self) -> bool:
        """Whether a PEP 740 provenance is served for it: uploaded with it, or offered upstream."""
        return self.provenance_sha256 is not None or self.provenance_upstream

    @property
    def blob_key(self) -> str:
        """Where the bytes live in blob storage.

        The key carries the sha256, so two different files claiming one
        filename (a race between processes) never overwrite each other's
        bytes: the loser's blob is simply deleted.
        """
        return f"{self.sha256[:2]}/{self.sha256[2:4]}/{self.sha256[4:]}/{self.filename}"

    @property
    def provenance_key(self) -> str:
        """Where its PEP 740 provenance lives: beside the bytes, named after both.

        The key carries the provenance's own sha256 too: two uploads of one
        file with other attestations (each signing gives new ones) race
        without overwriting each other's, and the loser deletes its own.
        """
        assert self.provenance_sha256 is not None, "a record without provenance has no key"
        return f"{self.blob_key}.{self.provenance_sha256[:16]}{PROVENANCE_SUFFIX}"

    @property
    def stored_keys(self) -> tuple[str, ...]:
        """Every blob this record names: its bytes, and its provenance if it has one."""
        if self.provenance_sha256 is None:
            return (self.blob_key,)
        return (self.blob_key, self.provenance_key)

    @property
    def serves_metadata(self) -> bool:
        """Whether ``<file>.metadata`` is offered (PEP 658): wheels only.

        An sdist's PKG-INFO is only trustworthy from Metadata-Version 2.2 with
        no dynamic fields; rather than judge that, we offer wheels' alone,
        as the public index does.
        """
        return self.packagetype == WHEEL and self.metadata_sha256 is not None

    def with_changes(self, **changes: Any) -> FileRecord:
        return replace(self, **changes)


#: PEP 792 project status markers. ``active``: the default. ``archived``: no
#: new uploads, files still served. ``quarantined``: no uploads and no file
#: offered to installers (owners and admins still see them). ``deprecated``:
#: served as active, with a warning on the project page.
ACTIVE = "active"
ARCHIVED = "archived"
QUARANTINED = "quarantined"
DEPRECATED = "deprecated"
STATUSES = (ACTIVE, ARCHIVED, QUARANTINED, DEPRECATED)


@dataclass(frozen=True, slots=True)
class ProjectRecord(_Serialised):
    """A project hosted here."""

    _TIMES = ("created",)

    name: str  # canonical
    display_name: str  # as first uploaded or registered
    serial: int  # the global serial of the project's last change
    created: datetime
    #: Metadata sent with ``:action=submit`` (register): field -> values.
    info: dict[str, list[str]] = field(default_factory=dict)
    #: Its PEP 792 status marker, one of STATUSES, set by an owner or an admin.
    status: str = ACTIVE
    #: Why it has that status (free text shown to installers), or None.
    status_reason: str | None = None
    #: The one-line ``Summary`` of its latest release, for the project list
    #: (kept by the stores as ``ministry.core.summaries`` rules); '' for none.
    summary: str = ""
    #: The release that summary came from; None when none did (or none said).
    summary_version: str | None = None


#: Project roles. Owners and maintainers may both upload, register and yank;
#: an owner is also who ``ministry-admin project owners`` lists as
#: responsible (PyPI keeps the same two roles).
OWNER = "owner"
MAINTAINER = "maintainer"
ROLES = (OWNER, MAINTAINER)


@dataclass(frozen=True, slots=True)
class UserRecord(_Serialised):
    """A user of the index, as the metadata store keeps it."""

    _TIMES = ("created",)

    name: str  # as given: user names are case-sensitive
    #: ``ministry.core.auth.hash_password`` output: scheme, parameters, salt, hash.
    password_hash: str
    admin: bool
    created: datetime


#: Token scopes (``TokenRecord.scope``).
UPLOAD_SCOPE = "upload"
READ_SCOPE = "read"
SCOPES = (UPLOAD_SCOPE, READ_SCOPE)


@dataclass(frozen=True, slots=True)
class TokenRecord(_Serialised):
    """An API token, kept as the digest of its secret only (shown once, at creation)."""

    _TIMES = ("created",)
    _TUPLES = ("projects",)

    id: str  # the public part of the token: names it in lists and revocations
    username: str
    digest: str  # ``ministry.core.auth.token_digest`` of the secret part
    #: Canonical names the token may act on; empty: every project its user may.
    projects: tuple[str, ...]
    created: datetime
    #: UPLOAD_SCOPE: whatever its user may do; READ_SCOPE: install only. Tokens
    #: stored before scopes existed have none in their JSON, so they upload.
    scope: str = UPLOAD_SCOPE


@dataclass(frozen=True, slots=True)
class TeamRecord(_Serialised):
    """A named group of users, which holds roles in projects as ``@name`` (``core.teams``)."""

    _TIMES = ("created",)
    _TUPLES = ("members",)

    name: str  # without the '@'
    #: User names, sorted; store users or htpasswd users, as roles may name.
    members: tuple[str, ...]
    created: datetime

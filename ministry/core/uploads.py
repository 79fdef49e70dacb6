"""The legacy upload API's form, checked field by field.

twine, ``uv publish``, poetry, pdm and ``setup.py upload`` all POST the same
multipart form (Warehouse's legacy API). The web layer streams the file to
disk and hashes it; this module decides whether the rest of the form agrees
with that file, and turns an accepted upload into a :class:`FileRecord`.
Every refusal is a 400 that says which field is wrong, because twine shows
the message to the user and retries nothing below 500.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from packaging.version import InvalidVersion, Version

from ministry.core import attestations
from ministry.core.errors import BadRequest
from ministry.core.metadata import CoreMetadata
from ministry.core.models import SDIST, WHEEL, FileRecord
from ministry.core.names import ParsedFilename, canonical, check_project_name, parse_filename, shown

FILE_UPLOAD = "file_upload"
SUBMIT = "submit"

#: The form's ``filetype`` values we host, mapped to the package type their
#: filename must have (the same strings, kept as a table for the message).
FILETYPES = {"bdist_wheel": WHEEL, "sdist": SDIST}

#: Form fields that describe the request or the file, not the project, so
#: they are not kept as registered metadata.
NOT_METADATA = frozenset(
    {
        ":action",
        "protocol_version",
        "content",
        "md5_digest",
        "sha256_digest",
        "blake2_256_digest",
        "gpg_signature",
        "attestations",
    }
)


@dataclass(frozen=True)
class ReceivedFile:
    """The uploaded file as the web layer saw it while streaming it to disk."""

    filename: str
    size: int
    sha256: str  # hex
    blake2b_256: str  # hex
    md5: str  # hex
    #: Only computed for old distutils clients (see :func:`wants_blake2b_512`).
    blake2b_512: str | None = None


@dataclass(frozen=True)
class UploadForm:
    """The fields of an upload form that the checks need, plus all of them."""

    action: str
    protocol_version: str
    name: str  # as sent: it becomes the display name on a first upload
    version: str | None
    filetype: str | None
    pyversion: str | None
    metadata_version: str | None
    md5_digest: str | None
    sha256_digest: str | None
    blake2_256_digest: str | None
    #: Every non-empty field, repeated ones in order (classifiers, requires_dist...).
    fields: dict[str, list[str]]


def parse_form(fields: dict[str, list[str]]) -> UploadForm:
    """Read the form fields (the file part excluded), refusing what we cannot serve.

    Clients send unused fields as empty strings, so those count as absent;
    fields we do not know are kept in ``fields`` and otherwise ignored, as
    new client versions add them.
    """
    present = {key: kept for key, values in fields.items() if (kept := [v for v in values if v])}
    action = _single(present, ":action")
    if action not in (FILE_UPLOAD, SUBMIT):
        given = "none given" if action is None else shown(action)
        raise BadRequest(f"Unsupported ':action' ({given}): use '{FILE_UPLOAD}' or '{SUBMIT}'.")
    protocol_version = _single(present, "protocol_version") or "1"
    if protocol_version != "1":
        raise BadRequest(
            f"Unsupported protocol_version {shown(protocol_version)}: only '1' is supported."
        )
    name = _required(present, "name", action)
    check_project_name(name)
    return UploadForm(
        action=action,
        protocol_version=protocol_version,
        name=name,
        version=_required(present, "version", action) if action == FILE_UPLOAD else None,
        filetype=_required(present, "filetype", action) if action == FILE_UPLOAD else None,
        pyversion=_single(present, "pyversion"),
        metadata_version=_single(present, "metadata_version"),
        md5_digest=_single(present, "md5_digest"),
        sha256_digest=_single(present, "sha256_digest"),
        blake2_256_digest=_single(present, "blake2_256_digest"),
        fields=present,
    )


def registration(form: UploadForm) -> tuple[str, str, dict[str, list[str]]]:
    """What ``:action=submit`` registers: canonical name, display name, metadata."""
    info = {key: values for key, values in form.fields.items() if key not in NOT_METADATA}
    return canonical(form.name), form.name, info


def check_file(form: UploadForm, received: ReceivedFile) -> ParsedFilename:
    """Check the uploaded file against the form, before its archive is opened.

    The digests come first: if the bytes were damaged on the way, every
    other complaint would be a red herring.
    """
    if received.size == 0:
        raise BadRequest(f"The uploaded file {shown(received.filename)} is empty.")
    _check_digests(form, received)
    parsed = parse_filename(received.filename)
    _check_filetype(form.filetype, parsed)
    if canonical(form.name) != parsed.project:
        raise BadRequest(
            f"The form's name {shown(form.name)} does not match the filename "
            f"{shown(parsed.filename)} (project {parsed.project!r})."
        )
    version = _version(form.version, "The form's version")
    if version != parsed.version:
        raise BadRequest(
            f"The form's version {shown(str(form.version))} does not match the filename "
            f"{shown(parsed.filename)} (version {str(parsed.version)!r})."
        )
    return parsed


def build_record(
    form: UploadForm,
    received: ReceivedFile,
    parsed: ParsedFilename,
    metadata: CoreMetadata,
    metadata_bytes: bytes,
    upload_time: datetime,
) -> tuple[FileRecord, str]:
    """The record to store for an accepted file, and the project's display name.

    The archive's own metadata is what installers will read, so it must
    name the same project and version as the filename they select by.
    """
    check_project_name(metadata.name)
    if canonical(metadata.name) != parsed.project:
        raise BadRequest(
            f"The metadata Name {shown(metadata.name)} does not match the filename "
            f"{shown(parsed.filename)} (project {parsed.project!r})."
        )
    if _version(metadata.version, "The metadata Version") != parsed.version:
        raise BadRequest(
            f"The metadata Version {shown(metadata.version)} does not match the filename "
            f"{shown(parsed.filename)} (version {str(parsed.version)!r})."
        )
    record = FileRecord(
        project=parsed.project,
        filename=received.filename,
        version=metadata.version,
        packagetype=parsed.packagetype,
        size=received.size,
        sha256=received.sha256,
        blake2b_256=received.blake2b_256,
        md5=received.md5,
        upload_time=upload_time,
        requires_python=metadata.requires_python or _single(form.fields, "requires_python"),
        python_version=form.pyversion or ("source" if parsed.packagetype == SDIST else ""),
        metadata_sha256=hashlib.sha256(metadata_bytes).hexdigest(),
    )
    return record, metadata.name


def provenance(form: UploadForm, record: FileRecord) -> tuple[FileRecord, bytes | None]:
    """The record marked with the PEP 740 provenance its attestations make, and that provenance.

    Without an ``attestations`` field the record is unchanged and there is
    none; a field that does not attest this very file is a 400
    (``ministry.core.attestations``).
    """
    field = _single(form.fields, "attestations")
    if field is None:
        return record, None
    document = attestations.provenance_for(field, record.filename, record.sha256)
    return record.with_changes(provenance_sha256=hashlib.sha256(document).hexdigest()), document


def wants_blake2b_512(form: UploadForm) -> bool:
    """Whether the client sent a 512-bit blake2b under the ``blake2_256_digest`` name.

    The distutils ``upload`` command of Python 3.8 to 3.11 called
    ``hashlib.blake2b()`` with its default size, so its "blake2_256" digest
    has 128 hex digits. Such a file is checked against blake2b-512, which is
    computed only for these uploads.
    """
    return form.blake2_256_digest is not None and len(form.blake2_256_digest) == 128


def _check_digests(form: UploadForm, received: ReceivedFile) -> None:
    """Every digest the client sent must match; twine sends sha256 and blake2."""
    blake2 = received.blake2b_512 if wants_blake2b_512(form) else received.blake2b_256
    pairs = (
        ("md5_digest", form.md5_digest, received.md5),
        ("sha256_digest", form.sha256_digest, received.sha256),
        ("blake2_256_digest", form.blake2_256_digest, blake2 or ""),
    )
    for field, given, computed in pairs:
        if given is not None and given.lower() != computed.lower():
            raise BadRequest(
                f"The {field} does not match the uploaded file {shown(received.filename)}: "
                "it was damaged in transit or the digest is wrong."
            )


def _check_filetype(filetype: str | None, parsed: ParsedFilename) -> None:
    if filetype not in FILETYPES:
        raise BadRequest(
            f"Unsupported filetype {shown(str(filetype))}: use "
            f"{' or '.join(repr(known) for known in FILETYPES)}."
        )
    if FILETYPES[filetype] != parsed.packagetype:
        raise BadRequest(
            f"The filetype {filetype!r} does not match the file {shown(parsed.filename)} "
            f"(a {parsed.extension} file is {parsed.packagetype!r})."
        )


def _version(text: str | None, what: str) -> Version:
    try:
        return Version(text or "")
    except InvalidVersion:
        raise BadRequest(f"{what} {shown(str(text))} is not a valid PEP 440 version.") from None


def _single(fields: dict[str, list[str]], key: str) -> str | None:
    """One value for a field that must not repeat; differing repeats are ambiguous."""
    values = fields.get(key)
    if not values:
        return None
    if len(set(values)) > 1:
        raise BadRequest(f"The field {key!r} was given more than once, with different values.")
    return values[0]


def _required(fields: dict[str, list[str]], key: str, action: str) -> str:
    value = _single(fields, key)
    if value is None:
        raise BadRequest(f"Missing required field {key!r} for ':action' {action!r}.")
    return value

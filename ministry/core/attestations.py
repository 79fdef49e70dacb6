"""PEP 740 attestations sent with an upload, checked for shape and for naming this file.

``twine upload --attestations`` and ``uv publish`` send an ``attestations``
form field: a JSON list of attestation objects. Each one carries a Sigstore
certificate and transparency log entries (``verification_material``) and a
DSSE envelope whose ``statement`` is a base64 in-toto Statement naming the
files it is about. Here an upload is refused (400) unless every attestation
has that shape and its statement names exactly this file, by filename and
sha256: an attestation for other bytes, kept beside these, would mislead
whoever reads it.

The signatures are checked afterwards, offline, by
:mod:`ministry.core.signatures`: a signature that does not verify is shown
as such on the project page, not refused, so that an index without the
Sigstore trust root's latest keys still takes uploads. Who the signer
ought to be is never checked (PEP 740 compares with a Trusted Publisher,
which this index does not have), and the bundle's publisher says so
(:data:`UNVERIFIED_PUBLISHER`).

:func:`provenance_for` turns the field into the PEP 740 provenance object
the Integrity API serves, as bytes ready to store beside the file.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import quote

from ministry.core.errors import BadRequest
from ministry.core.models import FileRecord
from ministry.core.names import shown

#: The in-toto Statement type PEP 740 attestations use.
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"

#: The Integrity API's media type (PEP 740), for the provenance document.
INTEGRITY_V1 = "application/vnd.pypi.integrity.v1+json"

#: The bundle's publisher: PEP 740 names the Trusted Publisher there, which
#: this index neither has nor checked the certificate against.
UNVERIFIED_PUBLISHER: dict[str, Any] = {"kind": "unverified", "claims": None}


def integrity_path(record: FileRecord) -> str | None:
    """Where the Integrity API serves a file's provenance, under the root; None without one."""
    if not record.has_provenance:
        return None
    parts = (record.project, record.version, record.filename)
    return "integrity/" + "/".join(quote(part, safe="") for part in parts) + "/provenance"


def provenance_for(field: str, filename: str, sha256: str) -> bytes:
    """The provenance object for a checked ``attestations`` field, as JSON bytes.

    Raises BadRequest naming what is wrong, so that twine shows it.
    """
    attestations = parse_attestations(field)
    for position, attestation in enumerate(attestations, start=1):
        check_bound(attestation, filename, sha256, position)
    provenance = {
        "version": 1,
        "attestation_bundles": [{"publisher": UNVERIFIED_PUBLISHER, "attestations": attestations}],
    }
    return json.dumps(provenance, separators=(",", ":")).encode()


def check_provenance(document: bytes, filename: str, sha256: str) -> None:
    """Refuse a provenance object (an upstream's) that is not PEP 740's or not about this file.

    Each attestation of each bundle gets the checks an uploaded one gets.
    """
    try:
        provenance = json.loads(document)
    except ValueError:
        raise BadRequest("The provenance is not JSON.") from None
    if not isinstance(provenance, dict):
        provenance = {}
    bundles = provenance.get("attestation_bundles")
    if provenance.get("version") != 1 or not isinstance(bundles, list) or not bundles:
        raise BadRequest("The provenance is not a PEP 740 provenance object (version 1).")
    position = 0
    for bundle in bundles:
        attestations = bundle.get("attestations") if isinstance(bundle, dict) else None
        if not isinstance(attestations, list) or not attestations:
            raise BadRequest("Each of the provenance's bundles must list attestations.")
        for attestation in attestations:
            position += 1
            _check_shape(attestation, position)
            check_bound(attestation, filename, sha256, position)


def parse_attestations(field: str) -> list[dict[str, Any]]:
    """The field's attestation objects, each checked for PEP 740's shape."""
    try:
        attestations = json.loads(field)
    except ValueError as error:
        raise BadRequest(f"The 'attestations' field is not valid JSON: {error}.") from None
    if not isinstance(attestations, list) or not attestations:
        raise BadRequest("The 'attestations' field must be a non-empty JSON list.")
    for position, attestation in enumerate(attestations, start=1):
        _check_shape(attestation, position)
    return attestations


def check_bound(attestation: dict[str, Any], filename: str, sha256: str, position: int) -> None:
    """Refuse an attestation whose statement does not name exactly this file."""
    statement = _statement(attestation["envelope"]["statement"], position)
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise BadRequest(f"Attestation {position}: the statement must have exactly one subject.")
    subject = subjects[0]
    digest = subject.get("digest")
    named = subject.get("name")
    given = digest.get("sha256") if isinstance(digest, dict) else None
    if named != filename or not isinstance(given, str) or given.lower() != sha256.lower():
        raise BadRequest(
            f"Attestation {position} is for {shown(str(named))} with sha256 "
            f"{shown(str(given))}, not for the uploaded {shown(filename)}."
        )


def _check_shape(attestation: object, position: int) -> None:
    """Version 1, verification material and an envelope, with their required members."""
    where = f"Attestation {position}"
    if not isinstance(attestation, dict):
        raise BadRequest(f"{where} is not a JSON object.")
    if attestation.get("version") != 1:
        raise BadRequest(f"{where}: 'version' must be 1.")
    material = _member(attestation, "verification_material", dict, where)
    _member(material, "certificate", str, f"{where}'s verification_material")
    entries = _member(material, "transparency_entries", list, f"{where}'s verification_material")
    if not entries or not all(isinstance(entry, dict) for entry in entries):
        raise BadRequest(f"{where}: 'transparency_entries' must list at least one object.")
    envelope = _member(attestation, "envelope", dict, where)
    _member(envelope, "statement", str, f"{where}'s envelope")
    _member(envelope, "signature", str, f"{where}'s envelope")


def _member(parent: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = parent.get(key)
    if not isinstance(value, kind) or not value:
        raise BadRequest(f"{where} needs a non-empty {key!r} ({kind.__name__}).")
    return value


def _statement(encoded: str, position: int) -> dict[str, Any]:
    """The in-toto Statement inside an envelope (base64 of its JSON)."""
    try:
        statement = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise BadRequest(
            f"Attestation {position}: the envelope's statement is not base64-encoded JSON."
        ) from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise BadRequest(f"Attestation {position}: the statement is not an {STATEMENT_TYPE}.")
    return statement

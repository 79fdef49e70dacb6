"""The PEP 740 ``attestations`` field: shape and binding to the uploaded file (no signatures)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json

import pytest
from attestation_factory import attestation, field, statement

from ministry.core.attestations import (
    UNVERIFIED_PUBLISHER,
    check_provenance,
    integrity_path,
    provenance_for,
)
from ministry.core.errors import BadRequest
from ministry.core.models import FileRecord, utcnow

NAME = "tidy-1.0-py3-none-any.whl"
DATA = b"the wheel's bytes"
SHA256 = hashlib.sha256(DATA).hexdigest()
GOOD = attestation(NAME, DATA)


def changed(path: tuple[str, ...], value: object) -> dict:
    """GOOD with the member at ``path`` set to ``value`` (deleted when None)."""
    result = copy.deepcopy(GOOD)
    parent = result
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return result


def encoded(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_a_good_field_becomes_a_provenance_with_the_attestations_as_sent():
    provenance = json.loads(provenance_for(field(GOOD, GOOD), NAME, SHA256))
    assert provenance == {
        "version": 1,
        "attestation_bundles": [{"publisher": UNVERIFIED_PUBLISHER, "attestations": [GOOD, GOOD]}],
    }


def test_the_digest_may_be_sent_in_upper_case():
    provenance_for(field(GOOD), NAME, SHA256.upper())


MALFORMED = {
    "not JSON": ("[{", "not valid JSON"),
    "an object, not a list": (json.dumps(GOOD), "non-empty JSON list"),
    "an empty list": ("[]", "non-empty JSON list"),
    "a list of strings": ('["x"]', "Attestation 1 is not a JSON object"),
    "version 2": (field(changed(("version",), 2)), "'version' must be 1"),
    "no version": (field(changed(("version",), None)), "'version' must be 1"),
    "no verification material": (
        field(changed(("verification_material",), None)),
        "'verification_material'",
    ),
    "no certificate": (
        field(changed(("verification_material", "certificate"), None)),
        "'certificate'",
    ),
    "no transparency entries": (
        field(changed(("verification_material", "transparency_entries"), [])),
        "'transparency_entries'",
    ),
    "entries that are not objects": (
        field(changed(("verification_material", "transparency_entries"), ["x"])),
        "'transparency_entries' must list",
    ),
    "no envelope": (field(changed(("envelope",), None)), "'envelope'"),
    "no signature": (field(changed(("envelope", "signature"), None)), "'signature'"),
    "a statement that is not base64": (
        field(changed(("envelope", "statement"), "%%%")),
        "not base64-encoded JSON",
    ),
    "a statement that is not JSON": (
        field(changed(("envelope", "statement"), base64.b64encode(b"{").decode())),
        "not base64-encoded JSON",
    ),
    "not an in-toto statement": (
        field(changed(("envelope", "statement"), encoded({"subject": []}))),
        "not an https://in-toto.io/Statement/v1",
    ),
    "a second attestation that is broken": (
        field(GOOD, changed(("envelope",), None)),
        "Attestation 2",
    ),
}


@pytest.mark.parametrize(("text", "reason"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_field_is_refused_saying_why(text, reason):
    with pytest.raises(BadRequest, match=reason) as refused:
        provenance_for(text, NAME, SHA256)
    assert refused.value.status == 400


UNBOUND = {
    "another filename": attestation("tidy-1.0.tar.gz", DATA),
    "other bytes": attestation(NAME, b"other bytes"),
    "no digest": attestation(NAME, DATA, subject=[{"name": NAME}]),
    "no subject": attestation(NAME, DATA, subject=[]),
    "two subjects": attestation(NAME, DATA, subject=statement(NAME, SHA256)["subject"] * 2),
}


@pytest.mark.parametrize("unbound", UNBOUND.values(), ids=UNBOUND.keys())
def test_an_attestation_about_another_file_is_refused(unbound):
    with pytest.raises(BadRequest, match=r"Attestation 2|exactly one subject"):
        provenance_for(field(GOOD, unbound), NAME, SHA256)


def test_the_integrity_path_names_project_version_and_file_quoted():
    record = FileRecord(
        "tidy", "tidy-1.0+local.1.tar.gz", "1.0+local.1", "sdist", 1, SHA256, "b", "m", utcnow()
    )
    assert integrity_path(record) is None
    marked = record.with_changes(provenance_sha256="0" * 64)
    assert integrity_path(marked) == (
        "integrity/tidy/1.0%2Blocal.1/tidy-1.0%2Blocal.1.tar.gz/provenance"
    )
    offered = record.with_changes(provenance_upstream=True)
    assert integrity_path(offered) == integrity_path(marked)


def provenance(*bundles: object, version: object = 1) -> bytes:
    return json.dumps({"version": version, "attestation_bundles": list(bundles)}).encode()


def test_an_upstream_provenance_about_this_file_passes():
    check_provenance(provenance_for(field(GOOD), NAME, SHA256), NAME, SHA256)
    two = provenance({"attestations": [GOOD]}, {"attestations": [GOOD, GOOD]})
    check_provenance(two, NAME, SHA256)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        pytest.param(b"<html>", "not JSON", id="not JSON"),
        pytest.param(b"[]", "not a PEP 740 provenance", id="a list"),
        pytest.param(provenance({"attestations": [GOOD]}, version=2), "version 1", id="version"),
        pytest.param(provenance(), "not a PEP 740 provenance", id="no bundles"),
        pytest.param(provenance({"attestations": []}), "must list attestations", id="empty"),
        pytest.param(provenance("bundle"), "must list attestations", id="bundle not object"),
        pytest.param(
            provenance({"attestations": [changed(("version",), 2)]}),
            "'version' must be 1",
            id="shape",
        ),
        pytest.param(
            provenance({"attestations": [GOOD]}, {"attestations": [attestation(NAME, b"other")]}),
            "Attestation 2 is for",
            id="second bundle about other bytes",
        ),
    ],
)
def test_an_upstream_provenance_that_is_not_about_this_file_is_refused(document, reason):
    with pytest.raises(BadRequest, match=reason):
        check_provenance(document, NAME, SHA256)

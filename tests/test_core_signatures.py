"""The offline check of a provenance's Sigstore signatures, on real and on made-up attestations."""

from __future__ import annotations

import hashlib
import json

from attestation_factory import attestation
from sigstore_samples import SIGNED_SDIST, SIGNER, sample

from ministry.core.attestations import provenance_for
from ministry.core.signatures import Checked, check


def provenance_of(filename: str, data: bytes, *attestations: dict) -> tuple[bytes, str]:
    sha256 = hashlib.sha256(data).hexdigest()
    return provenance_for(json.dumps(list(attestations)), filename, sha256), sha256


def test_a_real_signature_verifies_offline_and_names_its_signer() -> None:
    data = sample(SIGNED_SDIST)
    signed = json.loads(sample(f"{SIGNED_SDIST}.publish.attestation"))
    provenance, sha256 = provenance_of(SIGNED_SDIST, data, signed)
    assert check(provenance, SIGNED_SDIST, sha256) == Checked(
        signer=f"{SIGNER} (https://gitlab.com)"
    )


def test_a_real_signature_over_other_bytes_does_not_verify() -> None:
    signed = json.loads(sample(f"{SIGNED_SDIST}.publish.attestation"))
    provenance, _ = provenance_of(SIGNED_SDIST, sample(SIGNED_SDIST), signed)
    checked = check(provenance, SIGNED_SDIST, hashlib.sha256(b"other bytes").hexdigest())
    assert checked.signer is None
    assert "does not match distribution digest" in (checked.problem or "")


def test_a_made_up_signature_is_never_called_verified() -> None:
    data = b"demo bytes"
    provenance, sha256 = provenance_of(
        "demo_pkg-1.0.tar.gz", data, attestation("demo_pkg-1.0.tar.gz", data)
    )
    checked = check(provenance, "demo_pkg-1.0.tar.gz", sha256)
    assert checked.signer is None
    assert checked.problem == "its signature did not verify: invalid X.509 certificate"


def test_one_bad_attestation_among_good_ones_fails_the_whole_provenance() -> None:
    data = sample(SIGNED_SDIST)
    signed = json.loads(sample(f"{SIGNED_SDIST}.publish.attestation"))
    provenance, sha256 = provenance_of(SIGNED_SDIST, data, signed, attestation(SIGNED_SDIST, data))
    assert check(provenance, SIGNED_SDIST, sha256).signer is None


def test_what_is_not_a_provenance_object_is_said_so() -> None:
    assert check(b"[]", "x.tar.gz", "0" * 64).problem == (
        "the provenance is not a PEP 740 provenance object"
    )
    assert check(b'{"attestation_bundles": []}', "x.tar.gz", "0" * 64).problem == (
        "the provenance holds no attestations"
    )

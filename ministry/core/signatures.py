"""A PEP 740 provenance's Sigstore signatures, checked offline, and who they say signed.

What is checked (``pypi-attestations`` over ``sigstore``, with the trust
root that ``sigstore`` ships, never refreshed: this index may have no
network): each attestation's certificate chains to Sigstore's Fulcio, its
transparency log entry is genuine, and its DSSE signature covers a statement
naming this very file by filename and sha256. What is *not* checked is who
the signer ought to be: PEP 740 compares the certificate's identity with
the project's Trusted Publisher, which a private index does not have. So a
verified provenance says "signed by <the certificate's identity>", and the
project page shows that identity for a person to judge, never "trusted".

The check is CPU work of some milliseconds an attestation: callers run it
in a thread, once, when the provenance arrives (upload or upstream fetch),
and keep the result in the file's record; no read path verifies.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ministry.core.models import FileRecord

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

# Logged on every offline check; it is how this module means to work.
logging.getLogger("sigstore._internal.tuf").setLevel(logging.ERROR)

#: The certificate extension (Fulcio's "Issuer (V2)") naming the OIDC issuer.
_ISSUER = "1.3.6.1.4.1.57264.1.8"


@dataclass(frozen=True)
class Checked:
    """The outcome: ``signer`` when every signature verified, else ``problem`` says why not."""

    signer: str | None = None
    problem: str | None = None


class _AnySigner:
    """A sigstore verification policy that accepts whoever signed, and notes who.

    There is no Trusted Publisher to compare the certificate with (see the
    module docstring).
    """

    def __init__(self) -> None:
        self.signers: list[str] = []

    def verify(self, cert: Certificate) -> None:
        self.signers.append(signer_of(cert))


def signer_of(cert: Certificate) -> str:
    """``<identity> (<issuer>)`` from a Fulcio certificate, e.g. a CI workflow and its host."""
    from cryptography import x509
    from cryptography.hazmat import asn1

    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    identity = ", ".join(str(name.value) for name in names)
    try:
        raw = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(_ISSUER)).value
        issuer = asn1.decode_der(str, raw.public_bytes())
    except (x509.ExtensionNotFound, ValueError):
        return identity
    return f"{identity} ({issuer})"


def check(provenance: bytes, filename: str, sha256: str) -> Checked:
    """Verify every attestation of a PEP 740 provenance document for this file."""
    try:
        bundles = json.loads(provenance)["attestation_bundles"]
        attestations = [item for bundle in bundles for item in bundle["attestations"]]
    except (ValueError, KeyError, TypeError):
        return Checked(problem="the provenance is not a PEP 740 provenance object")
    if not attestations:
        return Checked(problem="the provenance holds no attestations")
    # Imported here, in the thread that checks: sigstore and pydantic take
    # most of a second to import, which no start-up should wait for.
    from pydantic import ValidationError
    from pypi_attestations import Attestation, AttestationError, Distribution

    policy = _AnySigner()
    try:
        distribution = Distribution(name=filename, digest=sha256)
        for attestation in attestations:
            Attestation.model_validate(attestation).verify(policy, distribution, offline=True)
    except (AttestationError, ValidationError, ValueError) as error:
        return Checked(problem=f"its signature did not verify: {_first_line(error)}")
    return Checked(signer=", ".join(dict.fromkeys(policy.signers)))


def marked(record: FileRecord, provenance: bytes) -> FileRecord:
    """The record of the file ``provenance`` is for, saying what its check found."""
    checked = check(provenance, record.filename, record.sha256)
    return record.with_changes(provenance_signer=checked.signer, provenance_problem=checked.problem)


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]

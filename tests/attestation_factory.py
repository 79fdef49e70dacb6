"""PEP 740 attestation objects built in the tests, shaped as twine and uv send them.

The certificate, log entry and signature are placeholders: the index checks
the shape and the statement's subject, never the signature (that needs the
Sigstore trust root and the network), so no test here signs anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any


def statement(filename: str, sha256: str) -> dict[str, Any]:
    """An in-toto Statement about one file, as a PyPI publish attestation has."""
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": filename, "digest": {"sha256": sha256}}],
        "predicateType": "https://docs.pypi.org/attestations/publish/v1",
        "predicate": None,
    }


def attestation(filename: str, data: bytes, **statement_changes: Any) -> dict[str, Any]:
    """An attestation object for ``data`` uploaded as ``filename``."""
    body = statement(filename, hashlib.sha256(data).hexdigest()) | statement_changes
    return {
        "version": 1,
        "verification_material": {
            "certificate": base64.b64encode(b"not a real certificate").decode(),
            "transparency_entries": [{"logIndex": "1", "kindVersion": {"kind": "dsse"}}],
        },
        "envelope": {
            "statement": base64.b64encode(json.dumps(body).encode()).decode(),
            "signature": base64.b64encode(b"not a real signature").decode(),
        },
    }


def field(*attestations: dict[str, Any]) -> str:
    """The ``attestations`` form field: the JSON list."""
    return json.dumps(list(attestations))

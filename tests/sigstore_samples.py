"""Attestations that Sigstore really signed, with the files they are for.

A real signature cannot be made offline (Sigstore's certificate authority
and transparency log are online services), and no test may reach the
network. ``pypi-attestations`` ships such attestations, signed by the CI
of their projects, among its sdist's test assets; the test set-up command
(the README's, as ``.ci/run`` runs it) downloads that sdist into
``<venv>/samples/``, and the tests read the files from it, unchanged.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

SDIST = Path(sys.prefix) / "samples" / "pypi_attestations-0.0.31.tar.gz"
ASSETS = "pypi_attestations-0.0.31/test/assets/"

#: A real sdist whose publish attestation its project's GitLab CI signed.
SIGNED_SDIST = "gitlab_oidc_project-0.0.3.tar.gz"
#: What the certificate of that signature names.
SIGNER = "https://gitlab.com/facutuesca/gitlab-oidc-project//.gitlab-ci.yml@refs/heads/main"


def sample(name: str) -> bytes:
    """One asset's bytes; fails (never skips) when the set-up command was not run."""
    if not SDIST.exists():
        pytest.fail(f"{SDIST} is missing: run the README's test set-up command, which downloads it")
    with tarfile.open(SDIST) as archive:
        member = archive.extractfile(ASSETS + name)
        assert member is not None, name
        return member.read()


def signed(directory: Path) -> tuple[Path, Path]:
    """:data:`SIGNED_SDIST` and its ``.publish.attestation``, written into ``directory``."""
    dist = directory / SIGNED_SDIST
    dist.write_bytes(sample(SIGNED_SDIST))
    sidecar = directory / f"{SIGNED_SDIST}.publish.attestation"
    sidecar.write_bytes(sample(f"{SIGNED_SDIST}.publish.attestation"))
    return dist, sidecar

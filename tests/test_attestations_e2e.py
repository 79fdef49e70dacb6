"""``twine upload --attestations`` and ``uv publish`` against a real daemon: the PEP 740 round trip.

Both send every ``<dist>.<name>.attestation`` file given with a dist as
that upload's ``attestations`` field. The attestations are built here
with placeholder signatures (the index checks shape and subject, not the
signature, which would need Sigstore and the network).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from accept_headers import JSON_V1
from archive_factory import make_wheel, wheel_filename
from attestation_factory import attestation
from servers import MinistryProcess, client_env

from ministry.core.attestations import INTEGRITY_V1

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    with MinistryProcess(tmp_path_factory.mktemp("attest") / "data") as process:
        yield process


def twine_upload(server: MinistryProcess, dist: Path, attested: bytes, home: Path):
    """``twine upload --attestations`` of ``dist`` with one attestation about ``attested``."""
    statement = attestation(dist.name, attested)
    sidecar = dist.parent / f"{dist.name}.publish.attestation"
    sidecar.write_text(json.dumps(statement))
    command = [
        *(sys.executable, "-m", "twine", "upload", "--repository-url", f"{server.url}/"),
        *("-u", "any", "-p", "any", "--non-interactive", "--disable-progress-bar"),
        *("--attestations", str(dist), str(sidecar)),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, env=client_env(home), timeout=180
    )
    return result, statement


def get(url: str, accept: str | None = None) -> tuple[str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["content-type"], response.read()


def test_twine_attestations_are_served_through_the_integrity_api(server, tmp_path):
    dist = tmp_path / wheel_filename("attested", "1.0")
    dist.write_bytes(make_wheel("attested", "1.0"))
    result, sent = twine_upload(server, dist, dist.read_bytes(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    page_url = f"{server.url}/simple/attested/"
    (entry,) = json.loads(get(page_url, JSON_V1)[1])["files"]
    content_type, body = get(urljoin(page_url, entry["provenance"]))
    assert content_type == INTEGRITY_V1
    (bundle,) = json.loads(body)["attestation_bundles"]
    assert bundle["attestations"] == [sent]


def test_twine_is_told_why_an_attestation_for_other_bytes_is_refused(server, tmp_path):
    dist = tmp_path / wheel_filename("misattested", "1.0")
    dist.write_bytes(make_wheel("misattested", "1.0"))
    result, _ = twine_upload(server, dist, b"other bytes", tmp_path)
    assert result.returncode != 0
    said = " ".join((result.stdout + result.stderr).split())  # twine wraps its lines
    assert "400" in said and "not for the uploaded" in said, said
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(f"{server.url}/simple/misattested/", JSON_V1)
    assert missing.value.code == 404


def test_uv_publish_sends_the_attestation_beside_the_dist(server, tmp_path):
    """Given ``<dist>.<name>.attestation`` files among its paths, uv uploads them with the dist."""
    dist = tmp_path / wheel_filename("uv-attested", "1.0")
    dist.write_bytes(make_wheel("uv-attested", "1.0"))
    sent = attestation(dist.name, dist.read_bytes())
    sidecar = tmp_path / f"{dist.name}.publish.attestation"
    sidecar.write_text(json.dumps(sent))
    command = [sys.executable, "-m", "uv", "publish", "--publish-url", f"{server.url}/legacy/"]
    command += ["-u", "any", "-p", "any", str(dist), str(sidecar)]
    result = subprocess.run(
        command, capture_output=True, text=True, env=client_env(tmp_path), timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr

    page_url = f"{server.url}/simple/uv-attested/"
    (entry,) = json.loads(get(page_url, JSON_V1)[1])["files"]
    (bundle,) = json.loads(get(urljoin(page_url, entry["provenance"]))[1])["attestation_bundles"]
    assert bundle["attestations"] == [sent]

"""``twine upload --attestations`` and ``uv publish`` against a real daemon: the PEP 740 round trip.

Both send every ``<dist>.<name>.attestation`` file given with a dist as
that upload's ``attestations`` field. The attestations are built here
with placeholder signatures, which the index shows as not verified, or
are real ones Sigstore signed (``sigstore_samples``), shown as verified.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
import time
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
from sigstore_samples import SIGNER, signed
from test_mirror import cached, wait_idle

from ministry.core.attestations import INTEGRITY_V1

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    with MinistryProcess(tmp_path_factory.mktemp("attest") / "data") as process:
        yield process


def placeholder(dist: Path, attested: bytes) -> tuple[Path, dict]:
    """A ``<dist>.publish.attestation`` about ``attested``, with a made-up signature."""
    statement = attestation(dist.name, attested)
    sidecar = dist.parent / f"{dist.name}.publish.attestation"
    sidecar.write_text(json.dumps(statement))
    return sidecar, statement


def twine_upload(server: MinistryProcess, dist: Path, sidecar: Path, home: Path):
    """``twine upload --attestations`` of ``dist`` with the attestation in ``sidecar``."""
    command = [
        *(sys.executable, "-m", "twine", "upload", "--repository-url", f"{server.url}/"),
        *("-u", "any", "-p", "any", "--non-interactive", "--disable-progress-bar"),
        *("--attestations", str(dist), str(sidecar)),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, env=client_env(home), timeout=180
    )


def get(url: str, accept: str | None = None) -> tuple[str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["content-type"], response.read()


def test_twine_attestations_are_served_through_the_integrity_api(server, tmp_path):
    dist = tmp_path / wheel_filename("attested", "1.0")
    dist.write_bytes(make_wheel("attested", "1.0"))
    sidecar, sent = placeholder(dist, dist.read_bytes())
    result = twine_upload(server, dist, sidecar, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    page_url = f"{server.url}/simple/attested/"
    (entry,) = json.loads(get(page_url, JSON_V1)[1])["files"]
    content_type, body = get(urljoin(page_url, entry["provenance"]))
    assert content_type == INTEGRITY_V1
    (bundle,) = json.loads(body)["attestation_bundles"]
    assert bundle["attestations"] == [sent]
    page = get(f"{server.url}/project/attested/")[1].decode()
    assert "not verified" in page and "signature verified" not in page
    assert "invalid X.509 certificate" in page


def test_a_sigstore_signed_upload_is_shown_verified_with_its_signer(server, tmp_path):
    """A real attestation (signed by its project's CI) is checked offline at upload."""
    dist, sidecar = signed(tmp_path)
    result = twine_upload(server, dist, sidecar, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    page = get(f"{server.url}/project/gitlab-oidc-project/")[1].decode()
    assert "signature verified" in page and "not verified" not in page
    assert html.escape(SIGNER) in page
    (entry,) = json.loads(get(f"{server.url}/simple/gitlab-oidc-project/", JSON_V1)[1])["files"]
    assert entry["provenance"] is not None


def test_twine_is_told_why_an_attestation_for_other_bytes_is_refused(server, tmp_path):
    dist = tmp_path / wheel_filename("misattested", "1.0")
    dist.write_bytes(make_wheel("misattested", "1.0"))
    result = twine_upload(server, dist, placeholder(dist, b"other bytes")[0], tmp_path)
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


def test_a_proxied_file_keeps_the_upstream_provenance_and_serves_it_offline(tmp_path):
    """The upstream's provenance is fetched with the file, checked, kept and served from cache."""
    with MinistryProcess(tmp_path / "upstream") as upstream:
        dist, sidecar = signed(tmp_path)
        assert twine_upload(upstream, dist, sidecar, tmp_path).returncode == 0
        integrity = f"integrity/gitlab-oidc-project/0.0.3/{dist.name}/provenance"
        original = get(f"{upstream.url}/{integrity}")[1]
        with MinistryProcess(tmp_path / "proxy", "--upstream", f"{upstream.url}/simple/") as proxy:
            page_url = f"{proxy.url}/simple/gitlab-oidc-project/"
            (entry,) = json.loads(get(page_url, JSON_V1)[1])["files"]
            assert entry["provenance"] == f"../../{integrity}"
            assert get(urljoin(page_url, entry["url"]))[1] == dist.read_bytes()
            deadline = time.monotonic() + 10
            while "Kept the upstream provenance" not in proxy.log_text():
                assert time.monotonic() < deadline, proxy.log_text()
                time.sleep(0.1)
            assert f"signed by {SIGNER}" in proxy.log_text()
    with MinistryProcess(tmp_path / "proxy", "--offline") as offline:
        content_type, body = get(f"{offline.url}/{integrity}")
        assert (content_type, body) == (INTEGRITY_V1, original)
        page = get(f"{offline.url}/project/gitlab-oidc-project/")[1].decode()
        assert "offered by the upstream" in page


def test_a_mirrored_file_keeps_the_upstream_provenance(tmp_path):
    """The mirror fetches each file's provenance with it, before the run counts as done."""
    with MinistryProcess(tmp_path / "upstream") as upstream:
        dist, sidecar = signed(tmp_path)
        assert twine_upload(upstream, dist, sidecar, tmp_path).returncode == 0
        config = tmp_path / "ministry.toml"
        # The sample is an sdist whose build backend (flit-core) the upstream does
        # not hold: this test is about provenance, not about building it offline.
        selection = 'projects = ["gitlab-oidc-project"]\nbuild_requirements = false\n'
        config.write_text(f'[mirror]\nevery = "1h"\n{selection}')
        mirror = MinistryProcess(
            tmp_path / "mirror", "--config", str(config), "--upstream", f"{upstream.url}/simple/"
        )
        with mirror:
            assert wait_idle(mirror)["errors"] == []
            assert {f"{dist.name}.provenance", dist.name} <= cached(mirror)

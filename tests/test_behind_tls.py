"""Behind a TLS-terminating nginx, as most teams deploy it: https clients end to end.

The daemon speaks plain HTTP; nginx holds a self-signed certificate for
127.0.0.1, which the clients trust through their own options. twine
uploads over https, pip and uv install back over https (the page's file
links must work through the proxy), and ``uv publish`` without credentials,
whose trusted-publishing probe (``https://HOST/_/oidc/audience``) now really
reaches the daemon through TLS, is told at once that it is not offered and
stops on its missing credentials instead of retrying.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nginx_proxy import certificates, nginx
from publisher_fixtures import write_dists
from servers import MinistryProcess, client_env
from test_e2e_clients import UV, run

pytestmark = pytest.mark.e2e

TLS_SERVER = """\
        listen 127.0.0.1:{{port}} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        client_max_body_size 100m;
        location / {{{{
            proxy_pass http://ministry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}}}
"""


#: Where clients look for their CA bundle, besides their own options: each is
#: pointed at the test's certificate (a machine may set them all, and requests
#: lets ``REQUESTS_CA_BUNDLE`` win over twine's ``--cert``).
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT")


def tls_env(home: Path, cert: Path) -> dict[str, str]:
    """The clients' environment, trusting ``cert`` alone."""
    env = client_env(home, dict.fromkeys(CA_VARIABLES, str(cert)))
    env.pop("SSL_CERT_DIR", None)
    return env


@pytest.fixture(scope="module")
def tls_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(the https URL of a daemon behind nginx, the CA certificate clients must trust)."""
    work = tmp_path_factory.mktemp("tls")
    ca, cert, key = certificates(work)
    with (
        MinistryProcess(work / "data", "--trusted-proxy", "127.0.0.1") as daemon,
        nginx(work / "nginx", daemon.port, TLS_SERVER.format(cert=cert, key=key)) as port,
    ):
        yield f"https://127.0.0.1:{port}", ca


def test_twine_uploads_and_pip_and_uv_install_over_https(
    tls_index: tuple[str, Path], tmp_path: Path
) -> None:
    url, cert = tls_index
    dists = write_dists(tmp_path / "dist", "tls-pkg", "1.0")
    env = tls_env(tmp_path / "home", cert)
    upload = [sys.executable, "-m", "twine", "upload", "--repository-url", f"{url}/legacy/"]
    upload += ["--cert", str(cert), "-u", "any", "-p", "any", "--non-interactive"]
    result = run([*upload, "--disable-progress-bar", *map(str, dists)], env)
    assert result.returncode == 0, result.output
    for installer in ("pip", "uv"):
        target = tmp_path / installer
        command = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target"]
        if installer == "uv":
            command = [*UV, "pip", "install", "--no-cache", "--python", sys.executable, "--target"]
        command += [str(target), "--index-url", f"{url}/simple/", "tls-pkg"]
        result = run(command, env)
        assert result.returncode == 0, result.output
        assert list(target.glob("tls_pkg-1.0.dist-info")), result.output


def test_uv_publish_without_credentials_hears_the_audience_404_through_tls(
    tls_index: tuple[str, Path], tmp_path: Path
) -> None:
    url, cert = tls_index
    wheel = write_dists(tmp_path / "dist", "uv-anonymous", "1.0")[0]
    env = tls_env(tmp_path / "home", cert)
    started = time.monotonic()
    result = run([*UV, "publish", "--publish-url", f"{url}/legacy/", str(wheel)], env)
    elapsed = time.monotonic() - started
    assert result.returncode != 0, result.output
    assert "trusted publishing (OIDC) is not offered by this index" in result.output
    assert "Missing credentials" in result.output
    assert elapsed < 5, f"uv took {elapsed:.1f} s\n{result.output}"

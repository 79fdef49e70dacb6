"""Reserved names with real clients: pip, twine, and two real daemons on loopback.

The upstream is a second ``twistd ministry`` holding a stranger's
``acme-foo``; the index under test proxies it with ``--reserve 'acme_*'``.
pip asking the index for ``acme-foo`` fails, and the upstream's own access
log shows it was never asked; twine uploading ``acme-foo`` is refused to a
plain user with a 403 that says why, and accepted from an administrator,
after which pip installs the team's ``acme-foo``, not the stranger's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from archive_factory import make_wheel, wheel_filename
from servers import MinistryProcess, client_env
from test_admin import admin
from test_e2e_clients import run
from test_proxy import assert_installs, install, installed, upload

pytestmark = pytest.mark.e2e


def asked_upstream(upstream: MinistryProcess, word: str) -> list[str]:
    """The upstream's access-log lines of requests whose path holds ``word``."""
    return [
        line
        for line in upstream.log_text().splitlines()
        if any(f'"{method} ' in line for method in ("GET", "HEAD")) and word in line
    ]


def twine_upload(index: MinistryProcess, wheel: Path, user: str, password: str, home: Path):
    command = [
        *(sys.executable, "-m", "twine", "upload", "--repository-url", f"{index.url}/"),
        *("-u", user, "-p", password, "--non-interactive", "--disable-progress-bar", str(wheel)),
    ]
    return run(command, client_env(home))


def test_a_reserved_name_never_reaches_the_upstream_and_only_an_admin_creates_it(tmp_path):
    with MinistryProcess(tmp_path / "upstream") as upstream:
        upload(upstream.url, "acme-foo", "9.0")  # a stranger's, with a higher version
        upload(upstream.url, "proxy-base", "1.0")
        data = tmp_path / "index"
        admin(data, "user", "add", "alice", "--password-stdin", stdin="alice-pw\n")
        admin(data, "user", "add", "root", "--admin", "--password-stdin", stdin="root-pw\n")
        index = MinistryProcess(
            data, *("--upstream", f"{upstream.url}/simple/", "--reserve", "acme_*")
        )
        with index:
            # The upstream answers for other names: its log records what it is asked.
            assert assert_installs("pip", index.url, tmp_path, "proxy-base") == {"proxy_base-1.0"}
            assert "GET /simple/proxy-base/" in upstream.log_text()

            refused = install("pip", index.url, tmp_path / "refused", tmp_path / "home", "acme-foo")
            assert refused.returncode != 0, refused.stdout + refused.stderr
            assert "acme-foo" in refused.stderr
            assert installed(tmp_path / "refused") == set()
            assert '"GET /simple/acme-foo/ HTTP/1.1" 404' in index.log_text()
            assert asked_upstream(upstream, "acme") == []

            wheel = tmp_path / wheel_filename("acme-foo", "1.0")
            wheel.write_bytes(make_wheel("acme-foo", "1.0"))
            as_alice = twine_upload(index, wheel, "alice", "alice-pw", tmp_path / "home")
            assert as_alice.returncode != 0, as_alice.output
            said = " ".join(as_alice.output.split())  # twine wraps its lines
            assert "403" in said, as_alice.output
            assert "reserved for this index" in said, as_alice.output
            assert "only an administrator may create it" in said, as_alice.output
            as_root = twine_upload(index, wheel, "root", "root-pw", tmp_path / "home")
            assert as_root.returncode == 0, as_root.output

            assert assert_installs("pip", index.url, tmp_path, "acme-foo") == {"acme_foo-1.0"}
        assert asked_upstream(upstream, "acme") == []

"""``ministry-admin cache drop``: a release published upstream is listed now, not after the TTL.

Two real daemons: the upstream is a ministry on loopback, the proxy a
second one with an hour of ``--upstream-ttl``. The admin command runs in
its own process on the proxy's data directory, as an operator runs it;
the running proxy hears of it through the metadata store and asks the
upstream again, so pip installs the new release at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from accept_headers import JSON_V1
from archive_factory import make_wheel
from servers import MinistryProcess, client_env
from test_admin import admin
from test_file_delivery import upload

pytestmark = pytest.mark.e2e


def versions(server: MinistryProcess, project: str = "fresh-pkg") -> list[str]:
    """The versions the simple JSON page of ``project`` offers."""
    request = urllib.request.Request(f"{server.url}/simple/{project}/", headers={"Accept": JSON_V1})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["versions"]


def pip_installs(server: MinistryProcess, where: Path) -> str:
    """The version of ``fresh-pkg`` real pip installs from ``server`` alone."""
    target = where / f"pip-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--retries", "0"]
    command += ["--target", str(target), "--index-url", f"{server.url}/simple/", "fresh-pkg"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=client_env(where / "home")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (found,) = target.glob("fresh_pkg-*.dist-info")
    return found.name.removesuffix(".dist-info").removeprefix("fresh_pkg-")


def test_a_dropped_project_is_asked_again_before_its_ttl(tmp_path: Path) -> None:
    with MinistryProcess(tmp_path / "upstream") as upstream:
        upload(upstream, "fresh-pkg", "1.0", make_wheel("fresh-pkg", "1.0"))
        data = tmp_path / "proxy"
        proxy_args = ("--upstream", f"{upstream.url}/simple/", "--upstream-ttl", "1h")
        with MinistryProcess(data, *proxy_args) as proxy:
            assert versions(proxy) == ["1.0"]
            upload(upstream, "fresh-pkg", "2.0", make_wheel("fresh-pkg", "2.0"))
            assert versions(proxy) == ["1.0"]  # the page is kept for its TTL
            assert pip_installs(proxy, tmp_path) == "1.0"

            dropped = admin(data, "cache", "drop", "Fresh_Pkg")
            assert dropped.stdout.startswith("fresh-pkg: every ministry on this store asks")
            deadline = time.monotonic() + 15  # the daemon polls the store every second
            while versions(proxy) != ["1.0", "2.0"] and time.monotonic() < deadline:
                time.sleep(0.2)
            assert versions(proxy) == ["1.0", "2.0"]
            assert pip_installs(proxy, tmp_path) == "2.0"

            upload(proxy, "mine", "1.0", make_wheel("mine", "1.0"))
            hosted = admin(data, "cache", "drop", "mine", ok=False)
            assert "mine is hosted here" in hosted.stderr
            bad = admin(data, "cache", "drop", "no!such", ok=False)
            assert "Invalid project name" in bad.stderr

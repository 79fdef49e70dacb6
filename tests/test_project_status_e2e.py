"""PEP 792 status with real clients: a real daemon, real twine, pip and uv, the admin command.

``ministry-admin project status`` writes to the running daemon's database
from another process, as an operator would; the daemon's cached pages must
hear of it. pip 26 does not read ``project-status`` yet, so what it prints
for a quarantined project found through the index is its own "from versions:
none"; a file URL (a lock file, ``--find-links``, an old link) gets our 403,
whose reason pip prints.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from accept_headers import JSON_V1
from servers import MinistryProcess, client_env
from test_admin import admin
from test_e2e_clients import run, twine_upload_command

pytestmark = pytest.mark.e2e

PROJECT = "ministry-sample"
PIP = (sys.executable, "-m", "pip")
UV = (sys.executable, "-m", "uv")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    with MinistryProcess(tmp_path_factory.mktemp("status") / "data") as process:
        yield process


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return client_env(tmp_path_factory.mktemp("client-home"))


def status_of(server: MinistryProcess) -> dict:
    request = urllib.request.Request(f"{server.url}/simple/{PROJECT}/", headers={"Accept": JSON_V1})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["project-status"]


def set_status(server: MinistryProcess, *args: str) -> None:
    """The admin command, then wait until the daemon's pages say so (its poll: ~1 s)."""
    admin(server.data_dir, "project", "status", PROJECT, *args)
    deadline = time.monotonic() + 10
    while status_of(server)["status"] != args[0]:
        assert time.monotonic() < deadline, status_of(server)
        time.sleep(0.1)


def pip_install(server: MinistryProcess, target: Path, requirement: str, env: dict[str, str]):
    command = [*PIP, "install", "--index-url", f"{server.url}/simple/", "--no-cache-dir"]
    return run([*command, "--target", str(target), requirement], env)


def uv_install(server: MinistryProcess, target: Path, env: dict[str, str]):
    command = [*UV, "pip", "install", "--index-url", f"{server.url}/simple/", "--no-cache"]
    return run([*command, "--python", sys.executable, "--target", str(target), PROJECT], env)


def test_a_quarantined_project_does_not_install_until_it_is_active_again(
    server, env, sample_dists, tmp_path
) -> None:
    wheel = sample_dists["1.0"]["wheel"]
    uploaded = run(twine_upload_command(server, [wheel]), env)
    assert uploaded.returncode == 0, uploaded.output
    assert pip_install(server, tmp_path / "before", PROJECT, env).returncode == 0

    set_status(server, "quarantined", "--reason", "malware found")
    assert status_of(server) == {"status": "quarantined", "reason": "malware found"}
    refused = pip_install(server, tmp_path / "quarantined", PROJECT, env)
    assert refused.returncode != 0, refused.output
    assert "from versions: none" in refused.output, refused.output
    assert not (tmp_path / "quarantined" / "ministry_sample").exists()
    by_url = pip_install(
        server, tmp_path / "by-url", f"{server.url}/packages/{PROJECT}/{wheel.name}", env
    )
    assert by_url.returncode != 0, by_url.output
    assert "ministry-sample is quarantined (malware found)" in by_url.output, by_url.output
    refused = uv_install(server, tmp_path / "uv-quarantined", env)
    assert refused.returncode != 0, refused.output
    assert not (tmp_path / "uv-quarantined" / "ministry_sample").exists()

    set_status(server, "active")
    result = pip_install(server, tmp_path / "after", PROJECT, env)
    assert result.returncode == 0, result.output
    assert (tmp_path / "after" / "ministry_sample" / "__init__.py").exists()
    result = uv_install(server, tmp_path / "uv-after", env)
    assert result.returncode == 0, result.output
    assert (tmp_path / "uv-after" / "ministry_sample" / "__init__.py").exists()


def test_twine_cannot_upload_to_an_archived_project(server, env, sample_dists) -> None:
    set_status(server, "archived", "--reason", "moved to ministry-sample2")
    refused = run(twine_upload_command(server, [sample_dists["1.1"]["wheel"]]), env)
    assert refused.returncode != 0, refused.output
    assert "ministry-sample is archived (moved to ministry-sample2)" in refused.output
    set_status(server, "active")
    accepted = run(twine_upload_command(server, [sample_dists["1.1"]["wheel"]]), env)
    assert accepted.returncode == 0, accepted.output

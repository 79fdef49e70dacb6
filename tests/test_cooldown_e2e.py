"""The proxy's cooldown against uv's ``--exclude-newer``: the same answer through a real twistd.

The upstream is a loopback server in a thread with one JSON page: ``cool``
1.0 uploaded three days ago, 2.0 two hours ago, and 3.0 with no upload time
at all. A proxy with ``--upstream-min-age 1d`` offers 1.0 alone (2.0 is too
young, 3.0 counts from when the proxy first saw it: now). A proxy without a
cooldown offers all three, and uv told ``--exclude-newer`` a day ago must
pick what the first proxy decided: 1.0. Without the option uv takes 3.0, so
the answer is the filter's, not an accident of the page.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from archive_factory import make_wheel, wheel_filename
from servers import MinistryProcess, client_env

from ministry.core.models import format_time

pytestmark = pytest.mark.e2e

JSON_V1 = "application/vnd.pypi.simple.v1+json"
NOW = datetime.now(UTC)
#: version -> upload time on the upstream page (None: the page gives none).
RELEASES = {
    "1.0": NOW - timedelta(days=3),
    "2.0": NOW - timedelta(hours=2),
    "3.0": None,
}


def _routes() -> dict[str, tuple[str, bytes]]:
    """The upstream's page and wheels, by path."""
    routes: dict[str, tuple[str, bytes]] = {}
    files = []
    for version, uploaded in RELEASES.items():
        filename, data = wheel_filename("cool", version), make_wheel("cool", version)
        routes[f"/files/{filename}"] = ("application/octet-stream", data)
        entry = {
            "filename": filename,
            "url": f"../../files/{filename}",
            "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
            "size": len(data),
        }
        if uploaded is not None:
            entry["upload-time"] = format_time(uploaded)
        files.append(entry)
    page = {"meta": {"api-version": "1.1"}, "name": "cool", "files": files}
    routes["/simple/cool/"] = (JSON_V1, json.dumps(page).encode())
    return routes


class _Static(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = self.server.routes.get(self.path)
        if found is None:
            self.send_error(404)
            return
        content_type, body = found
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Static)
    server.daemon_threads = True
    server.routes = _routes()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    server.shutdown()
    server.server_close()


def uv_installs(index: str, where: Path, *options: str) -> str:
    """The ``cool`` version ``uv pip install cool`` picks from ``index`` alone, uncached."""
    target = where / f"uv-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "uv", "pip", "install", "--no-cache"]
    command += ["--python", sys.executable, "--target", str(target)]
    command += ["--index-url", f"{index}/simple/", *options, "cool"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=client_env(where / "home")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (found,) = target.glob("cool-*.dist-info")
    return found.name.removesuffix(".dist-info").removeprefix("cool-")


def test_uv_exclude_newer_agrees_with_the_proxy_cooldown(tmp_path, upstream):
    cooled = MinistryProcess(
        tmp_path / "cooled", "--upstream", upstream, "--upstream-min-age", "1d"
    )
    plain = MinistryProcess(tmp_path / "plain", "--upstream", upstream)
    with cooled, plain:
        assert uv_installs(cooled.url, tmp_path) == "1.0"
        day_ago = format_time(datetime.now(UTC) - timedelta(days=1))
        assert uv_installs(plain.url, tmp_path, "--exclude-newer", day_ago) == "1.0"
        assert uv_installs(plain.url, tmp_path) == "3.0"


def test_an_undated_file_is_served_undated_and_its_hold_shown(tmp_path, upstream):
    cooled = MinistryProcess(
        tmp_path / "cooled", "--upstream", upstream, "--upstream-min-age", "1d"
    )
    plain = MinistryProcess(tmp_path / "plain", "--upstream", upstream)
    with cooled, plain:
        request = urllib.request.Request(f"{plain.url}/simple/cool/", headers={"Accept": JSON_V1})
        with urllib.request.urlopen(request, timeout=30) as response:
            files = {item["filename"]: item for item in json.load(response)["files"]}
        assert "upload-time" in files[wheel_filename("cool", "2.0")]
        assert "upload-time" not in files[wheel_filename("cool", "3.0")]
        with urllib.request.urlopen(f"{plain.url}/pypi/cool/json", timeout=30) as response:
            releases = json.load(response)["releases"]
        assert releases["2.0"][0]["upload_time_iso_8601"] is not None
        with urllib.request.urlopen(f"{plain.url}/project/cool/3.0/", timeout=30) as response:
            files_section = response.read().decode().split('id="files-heading"', 1)[1]
        assert "First seen here" in files_section and "Uploaded" not in files_section
        assert (
            releases["3.0"][0]["upload_time"] is releases["3.0"][0]["upload_time_iso_8601"] is None
        )
        # pip refuses to guess: the undated file stops --uploaded-prior-to.
        day_ago = format_time(datetime.now(UTC) - timedelta(days=1))
        done = pip_install(plain.url, tmp_path, "--uploaded-prior-to", day_ago)
        assert done.returncode != 0
        assert "does not provide upload-time metadata" in done.stdout + done.stderr
        with urllib.request.urlopen(f"{cooled.url}/project/cool/", timeout=30) as response:
            page = response.read().decode()
        held = re.findall(r'<li data-filename="([^"]+)">(.*?)</li>', page, re.S)
        assert [name for name, _ in held] == [wheel_filename("cool", v) for v in ("2.0", "3.0")]
        assert "First seen here" in held[1][1] and "Held back until" in held[1][1]


def pip_install(index: str, where: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--retries", "0"]
    command += ["--target", str(where / f"pip-{time.monotonic_ns()}")]
    command += ["--index-url", f"{index}/simple/", *options, "cool"]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=client_env(where / "home")
    )


def page_of(index: str, path: str) -> str:
    with urllib.request.urlopen(f"{index}{path}", timeout=30) as response:
        return response.read().decode()


def until_installs(index: str, where: Path, version: str) -> None:
    """uv picks ``version`` within a few seconds: the daemon hears of the admin's change by poll."""
    deadline = time.monotonic() + 15
    while (found := uv_installs(index, where)) != version and time.monotonic() < deadline:
        time.sleep(0.5)
    assert found == version


def test_an_audited_exception_releases_a_version_early_and_a_revoke_holds_it_again(
    tmp_path, upstream
):
    """``ministry-admin cooldown``, run beside a running daemon on its data directory."""
    from test_admin import admin

    data = tmp_path / "cooled"
    cooled = MinistryProcess(data, "--upstream", upstream, "--upstream-min-age", "1d")
    with cooled:
        assert uv_installs(cooled.url, tmp_path) == "1.0"
        refused = admin(data, "cooldown", "allow", "cool>=2", "--reason", "x", ok=False)
        assert "name a project, or one release as NAME==VERSION" in refused.stderr
        reasonless = admin(data, "cooldown", "allow", "cool==2.0", "--reason", " ", ok=False)
        assert "needs a reason" in reasonless.stderr

        allowed = admin(
            data,
            "--upstream-min-age",
            "1d",
            "cooldown",
            "allow",
            "Cool==2",
            "--reason",
            "CVE fix, diff reviewed",
        )
        assert allowed.stdout == "Cooldown waived for cool==2: CVE fix, diff reviewed\n"
        until_installs(cooled.url, tmp_path, "2.0")  # 3.0 is still held back
        listed = admin(data, "cooldown", "list").stdout.split("\t")
        assert (listed[0], listed[3]) == ("cool==2", "CVE fix, diff reviewed\n")
        page = page_of(cooled.url, "/project/cool/")
        assert 'data-exception="cool==2"' in page and "CVE fix, diff reviewed" in page
        held = re.findall(r'<li data-filename="([^"]+)">', page)
        assert held == [wheel_filename("cool", "3.0")]

        admin(data, "cooldown", "revoke", "cool==2.0")
        until_installs(cooled.url, tmp_path, "1.0")
        missing = admin(data, "cooldown", "revoke", "cool==2.0", ok=False)
        assert missing.stderr.strip() == "ministry-admin: No cooldown exception for cool==2.0."
        assert admin(data, "cooldown", "list").stdout == "No cooldown exceptions.\n"

        entries = admin(data, "audit", "--project", "cool").stdout.splitlines()
        actions = [(line.split("\t")[3], line.split("\t")[6]) for line in entries]
        assert actions == [("cooldown", "revoked"), ("cooldown", "allowed: CVE fix, diff reviewed")]

"""Several stateless daemons on real distributed engines: one index, nothing shared on disk.

Two ``twistd ministry`` processes with distinct ``--data-dir``s share only a
real redis-server and a real S3 bucket (SeaweedFS); a third daemon on its
own disk is their upstream, and its access log says exactly what they
fetched from it. Real twine uploads to one daemon; real pip and uv install
from the other. Then the faults: the object store stopped (503 with the
reason, ``/health`` names the part, recovery by itself) and bad
``--storage`` values at start-up (a one-line error or a failing
``/health``, never a hang).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from archive_factory import make_wheel, metadata_text, wheel_filename
from http_harness import post_file
from redis_server import RedisServer
from s3_server import S3Server, s3_environment
from servers import REPO_ROOT, MinistryProcess, client_env
from test_e2e_clients import run, twine_upload_command
from test_proxy import assert_installs

pytestmark = pytest.mark.e2e

BUCKET = "multihost"
#: Projects only the upstream holds: proxied, then mirrored.
PROXIED = [("far-lib", "1.0", []), ("far-app", "1.0", ["far-lib>=1"])]
MIRRORED = [("pin-lib", "1.0", []), ("pin-lib", "2.0", [])]
MIRROR_CONFIG = """
[mirror]
every = "1h"
projects = ["pin-lib"]
"""


def get(url: str, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects: (status, lower-cased headers, body)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                (response.read()),
            )
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def sent_files(upstream: MinistryProcess) -> list[str]:
    """Files the upstream sent (200s of /packages/ URLs), repeats kept."""
    return re.findall(r'"GET /packages/[^/]+/([^ /]+?\.whl) HTTP/1\.1" 200', upstream.log_since(0))


def distribution_files(data_dir: Path) -> list[Path]:
    """Wheels and sdists kept under a daemon's data directory (staging is transient)."""
    return [
        path
        for path in data_dir.rglob("*")
        if path.is_file() and path.name.endswith((".whl", ".tar.gz", ".metadata"))
    ]


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    with MinistryProcess(tmp_path_factory.mktemp("upstream")) as process:
        for name, version, requires in PROXIED + MIRRORED:
            metadata = metadata_text(name, version, requires_dist=requires)
            data = make_wheel(name, version, metadata=metadata)
            post_file(process.url, name, version, wheel_filename(name, version), data)
        yield process


def host(where: Path, s3: S3Server, redis: RedisServer, upstream: MinistryProcess, *extra: str):
    """One daemon of the fleet: Redis, the bucket, the upstream; its own data directory."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "ministry.toml").write_text(MIRROR_CONFIG)
    return MinistryProcess(
        where,
        *("--redis", redis.url, "--storage", s3.storage_url(BUCKET, "index")),
        *("--upstream", f"{upstream.url}/simple/", "--upstream-timeout", "5"),
        *("--config", str(where / "ministry.toml")),
        *extra,
        env=s3_environment(),
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, s3_server, redis, upstream):
    """Two daemons, both mirroring ``pin-lib`` at start-up (one run wins the lease)."""
    s3_server.create_bucket(BUCKET)
    root = tmp_path_factory.mktemp("fleet")
    with (
        host(root / "one", s3_server, redis, upstream) as one,
        host(root / "two", s3_server, redis, upstream, "--storage-redirect") as two,
    ):
        yield one, two


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return client_env(tmp_path_factory.mktemp("home"))


def mirror_report(daemon: MinistryProcess) -> dict:
    status, _, body = get(f"{daemon.url}/mirror/?format=json")
    assert status == 200, body
    return json.loads(body)


def test_twine_upload_to_one_is_installable_from_the_other_at_once(fleet, env, tmp_path):
    one, two = fleet
    wheel = tmp_path / wheel_filename("fleet-pkg", "1.0")
    wheel.write_bytes(make_wheel("fleet-pkg", "1.0"))
    done = run(twine_upload_command(one, [wheel]), env)
    assert done.returncode == 0, done.output
    for tool in ("pip", "uv"):
        assert assert_installs(tool, two.url, tmp_path, "fleet-pkg") == {"fleet_pkg-1.0"}
    # Streamed by one, redirected to a presigned URL by the other: the same bytes.
    path = f"/packages/fleet-pkg/{wheel.name}"
    status, headers, body = get(one.url + path)
    assert (status, body) == (200, wheel.read_bytes())
    streamed_type = headers["content-type"]
    status, headers, _ = get(two.url + path)
    assert status == 302 and headers["cache-control"] == "no-store"
    status, headers, body = get(headers["location"])  # from the object store itself
    assert (status, body) == (200, wheel.read_bytes())
    assert headers["content-type"] == streamed_type
    # Nothing of a distribution's bytes under either data directory: all in the bucket.
    assert distribution_files(one.data_dir) == distribution_files(two.data_dir) == []


def test_a_file_one_daemon_fetched_upstream_is_served_by_the_other(fleet, upstream, tmp_path):
    one, two = fleet
    before = len(sent_files(upstream))
    assert {"far_app-1.0", "far_lib-1.0"} == assert_installs("pip", one.url, tmp_path, "far-app")
    assert {"far_app-1.0", "far_lib-1.0"} == assert_installs("uv", two.url, tmp_path, "far-app")
    fetched = sent_files(upstream)[before:]
    assert sorted(fetched) == ["far_app-1.0-py3-none-any.whl", "far_lib-1.0-py3-none-any.whl"]


def test_one_mirror_pass_at_a_time_and_each_file_is_fetched_once(fleet, upstream):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        reports = [mirror_report(daemon) for daemon in fleet]
        if all(r["state"] == "idle" and r["runs"] + r["skipped_runs"] >= 1 for r in reports):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the mirror runs did not end: {reports}")
    pinned = [name for name in sent_files(upstream) if name.startswith("pin_lib")]
    assert sorted(pinned) == ["pin_lib-1.0-py3-none-any.whl", "pin_lib-2.0-py3-none-any.whl"]
    # Both daemons serve the mirrored files.
    for daemon in fleet:
        status, _, _ = get(f"{daemon.url}/simple/pin-lib/")
        assert status == 200


def test_the_object_store_down_is_a_503_with_the_reason_and_heals(fleet, s3_server):
    one, _ = fleet
    data = make_wheel("outage-pkg", "1.0")
    filename = wheel_filename("outage-pkg", "1.0")
    s3_server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as refused:
            post_file(one.url, "outage-pkg", "1.0", filename, data)
        assert refused.value.code == 503
        assert "storage" in refused.value.read().decode().lower()
        status, _, body = get(f"{one.url}/health")
        assert time.monotonic() - started < 40
        report = json.loads(body)
        assert status == 503 and report["storage"]["ok"] is False
        assert report["store"]["ok"] is True  # Redis is fine: the report names the part
        assert get(f"{one.url}/simple/outage-pkg/")[0] == 404  # nothing half-stored
    finally:
        s3_server.resume()
    deadline = time.monotonic() + 30
    while get(f"{one.url}/health")[0] != 200:
        assert time.monotonic() < deadline, one.log_tail()
        time.sleep(0.5)
    post_file(one.url, "outage-pkg", "1.0", filename, data)
    assert get(f"{one.url}/packages/outage-pkg/{filename}")[2] == data


def test_a_missing_bucket_starts_with_a_failing_health(tmp_path, s3_server):
    daemon = MinistryProcess(
        tmp_path / "d", "--storage", s3_server.storage_url("no-such-bucket"), env=s3_environment()
    )
    with daemon:
        status, _, body = get(f"{daemon.url}/health")
    assert status == 503
    report = json.loads(body)["storage"]
    assert "no-such-bucket" in report["location"] and "bucket" in report["error"].lower()


def test_wrong_credentials_start_with_a_failing_health(tmp_path, s3_server):
    s3_server.create_bucket("refusing")
    env = {**s3_environment(), "AWS_SECRET_ACCESS_KEY": "wrong"}
    url = s3_server.storage_url("refusing")
    with MinistryProcess(tmp_path / "d", "--storage", url, env=env) as d:
        status, _, body = get(f"{d.url}/health")
    assert status == 503 and "credentials" in json.loads(body)["storage"]["error"].lower()
    assert "wrong" not in body.decode()


def test_nothing_listening_is_a_failing_health_in_bounded_time(tmp_path):
    from servers import free_port

    url = f"s3://{BUCKET}?endpoint=http://127.0.0.1:{free_port()}"
    with MinistryProcess(tmp_path / "d", "--storage", url, env=s3_environment()) as daemon:
        started = time.monotonic()
        status, _, body = get(f"{daemon.url}/health")
        assert time.monotonic() - started < 15
    assert status == 503 and json.loads(body)["storage"]["ok"] is False


@pytest.mark.parametrize(
    "options",
    [
        ("--storage", "ftp://bucket"),
        ("--storage", "s3://"),
        ("--storage", "s3://Bad_Bucket?endpoint=http://127.0.0.1:9"),
        ("--storage", "s3://bucket?endpoint=nowhere"),
        ("--storage-redirect",),  # a directory has no presigned URLs
        ("--x-accel-redirect", "/_m/", "--storage", "s3://b12?endpoint=http://127.0.0.1:9"),
    ],
)
def test_a_bad_storage_url_is_a_one_line_error_at_start_up(tmp_path, options):
    daemon = MinistryProcess(tmp_path, *options, startup_timeout=15)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited"):
        daemon.start()
    assert time.monotonic() - started < 15
    said = daemon.log_text().split("=== test harness", 1)[1].splitlines()[1:]
    errors = [line for line in said if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ministry: --"), errors


def admin(data_dir: Path, *args: str) -> str:
    """``ministry-admin --data-dir DIR ARGS`` as an operator runs it, with the S3 keys."""
    done = subprocess.run(
        [sys.executable, "-m", "ministry.admin", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **s3_environment()},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_admin_moves_an_index_from_a_directory_to_a_bucket_and_back(tmp_path, s3_server):
    s3_server.create_bucket("moving")
    bucket = ("--storage", s3_server.storage_url("moving"))
    data = make_wheel("moving-pkg", "1.0")
    filename = wheel_filename("moving-pkg", "1.0")
    with MinistryProcess(tmp_path / "disk") as daemon:
        post_file(daemon.url, "moving-pkg", "1.0", filename, data)
    admin(tmp_path / "disk", "export", str(tmp_path / "dump"))
    admin(tmp_path / "cloud", *bucket, "import", str(tmp_path / "dump"))
    assert distribution_files(tmp_path / "cloud") == []
    with MinistryProcess(tmp_path / "cloud", *bucket, env=s3_environment()) as daemon:
        assert get(f"{daemon.url}/packages/moving-pkg/{filename}")[2] == data
    admin(tmp_path / "cloud", *bucket, "check", "--rehash")
    admin(tmp_path / "cloud", *bucket, "export", str(tmp_path / "back"))
    admin(tmp_path / "disk-again", "import", str(tmp_path / "back"))
    with MinistryProcess(tmp_path / "disk-again") as daemon:
        assert get(f"{daemon.url}/packages/moving-pkg/{filename}")[2] == data

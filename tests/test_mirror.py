"""The scheduled mirror against a real loopback upstream, then pip and uv from the mirror alone.

The upstream is a second ``twistd ministry`` holding a dependency tree built
here: platform-specific wheels (manylinux, Windows, macOS), a wheel for a
Python outside the targets, prereleases, old versions beyond ``latest``,
sdists, a dependency behind a Windows marker, one behind an extra, and one
behind a marker no target matches. Its access log lists every file it sent,
so the tests can say exactly what the mirror fetched.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from archive_factory import (
    make_sdist,
    make_wheel,
    metadata_text,
    sdist_filename,
    wheel_filename,
)
from http_harness import post_file
from servers import REPO_ROOT, MinistryProcess
from test_proxy import assert_installs, get

pytestmark = pytest.mark.e2e

LINUX = "manylinux_2_28_x86_64"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"

#: (name, version, tag or "sdist", requires_dist)
TREE = [
    ("mir-app", "1.0", "py3-none-any", ["mir-lib>=2"]),
    (
        "mir-app",
        "2.0",
        "py3-none-any",
        [
            "mir-lib>=2",
            "mir-win; sys_platform == 'win32'",
            "mir-extra; extra == 'fast'",
            "mir-never; python_version < '3.0'",
        ],
    ),
    ("mir-app", "2.0", "sdist", []),
    ("mir-app", "3.0b1", "py3-none-any", []),  # a prerelease: not mirrored
    ("mir-lib", "1.0", f"{CP}-{CP}-manylinux_2_17_x86_64.manylinux2014_x86_64", []),
    ("mir-lib", "2.0", f"{CP}-{CP}-manylinux_2_17_x86_64.manylinux2014_x86_64", []),
    ("mir-lib", "2.0", f"{CP}-{CP}-win_amd64", []),
    ("mir-lib", "2.0", f"{CP}-{CP}-macosx_11_0_arm64", []),  # no macOS target
    ("mir-lib", "2.0", "cp38-cp38-manylinux_2_17_x86_64", []),  # no 3.8 target
    ("mir-lib", "2.1", f"{CP}-{CP}-manylinux_2_34_x86_64", []),  # glibc too new
    ("mir-lib", "2.0", "sdist", []),
    ("mir-win", "1.0", "py3-none-any", []),
    ("mir-extra", "1.0", "py3-none-any", []),
    ("mir-never", "1.0", "py3-none-any", []),
    ("mir-big", "1.0", "py3-none-any", []),
]
#: What the configuration below must fetch, and nothing else.
WANTED = {
    "mir_app-1.0-py3-none-any.whl",
    "mir_app-2.0-py3-none-any.whl",
    "mir_app-2.0.tar.gz",
    f"mir_lib-2.0-{CP}-{CP}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    f"mir_lib-2.0-{CP}-{CP}-win_amd64.whl",
    "mir_lib-2.0.tar.gz",
    "mir_win-1.0-py3-none-any.whl",
    "mir_extra-1.0-py3-none-any.whl",
    "mir_big-1.0-py3-none-any.whl",
}
CONFIG = f"""
[mirror]
every = "1h"
projects = ["mir-app[fast]>=1.0"]
requirements = ["requirements.txt"]
python = ["{PY}"]
platforms = ["{LINUX}", "win_amd64"]
latest = 2
"""


def build(name: str, version: str, tag: str, requires: list[str]) -> tuple[str, bytes]:
    if tag == "sdist":
        return sdist_filename(name, version), make_sdist(name, version, requires_dist=requires)
    extra = {"blob.bin": os.urandom(4 * 1024**2)} if name == "mir-big" else None
    metadata = metadata_text(
        name, version, requires_dist=requires, extra_headers=[("Provides-Extra", "fast")]
    )
    data = make_wheel(name, version, tag=tag, metadata=metadata, extra_members=extra)
    return wheel_filename(name, version, tag), data


def fetched(upstream: MinistryProcess, since: int = 0) -> list[str]:
    """Files the upstream sent (200s of /packages/ file URLs), in order, repeats kept."""
    found = re.findall(
        r'"GET /packages/[^/]+/([^ /]+?\.(?:whl|tar\.gz)) HTTP/1\.1" 200',
        upstream.log_since(since),
    )
    return found


def mirror_status(mirror: MinistryProcess) -> dict:
    status, body = get(f"{mirror.url}/mirror/?format=json")
    assert status == 200, body
    return json.loads(body)


def wait_idle(mirror: MinistryProcess, runs: int = 1, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = mirror_status(mirror)
        if report["state"] == "idle" and report["runs"] >= runs:
            return report
        time.sleep(0.1)
    raise AssertionError(f"the mirror run did not end: {report}\n{mirror.log_tail()}")


def cached(mirror: MinistryProcess) -> set[str]:
    root = mirror.data_dir / "upstream" / "files"
    return {p.name for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    with MinistryProcess(tmp_path_factory.mktemp("upstream")) as process:
        for name, version, tag, requires in TREE:
            filename, data = build(name, version, tag, requires)
            post_file(process.url, name, version, filename, data)
        yield process


def mirroring(where: Path, upstream: MinistryProcess) -> MinistryProcess:
    where.mkdir(parents=True, exist_ok=True)
    (where / "ministry.toml").write_text(CONFIG)
    (where / "requirements.txt").write_text("# the big one\nmir-big  # any version\n-r other.txt\n")
    (where / "other.txt").write_text("--index-url https://upstream.example/simple/\n")
    return MinistryProcess(
        where,
        *("--config", str(where / "ministry.toml"), "--upstream", f"{upstream.url}/simple/"),
        *("--upstream-timeout", "5"),
    )


def test_a_run_at_start_up_mirrors_the_closure_and_nothing_else(tmp_path, upstream):
    mark = upstream.log_size()
    with mirroring(tmp_path / "mirror", upstream) as mirror:
        report = wait_idle(mirror)
        assert report["errors"] == [] and report["last_success"] is not None
        assert report["projects_done"] == report["projects_total"] == 5
        assert report["next_run"] is not None
        got = fetched(upstream, mark)
        assert sorted(got) == sorted(WANTED)  # each once, nothing outside the filters
        assert {name for name in cached(mirror) if not name.endswith(".metadata")} == WANTED
        assert report["files_fetched"] == len(WANTED)
        # /health, /metrics and the HTML page show it too.
        _, health = get(f"{mirror.url}/health")
        assert json.loads(health)["mirror"]["state"] == "idle"
        _, metrics = get(f"{mirror.url}/metrics")
        assert f"ministry_mirror_files_fetched_total {len(WANTED)}.0" in metrics.decode()
        lint = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr  # every family named as it counts
        status, page = get(f"{mirror.url}/mirror/")
        assert status == 200 and b"<h1>Mirror</h1>" in page and b"5 of 5" in page
        assert "Mirror run finished" in mirror.log_text()

        # Incremental: a second process start revalidates each page (304s) and fetches no file.
        mark = upstream.log_size()
        mirror.restart()
        wait_idle(mirror)
        assert fetched(upstream, mark) == []
        assert (
            len(re.findall(r'"GET /simple/mir-[a-z]+/ HTTP/1.1" 304', upstream.log_since(mark)))
            == 5
        )

    # With the upstream gone, pip and uv install the mirrored set from the mirrored files
    # alone (--offline lists only those: the upstream's page also names files outside the
    # filters, such as a manylinux_2_34 wheel this machine would prefer).
    upstream.stop()
    try:
        with MinistryProcess(tmp_path / "mirror", "--offline") as offline:
            expected = {"mir_app-2.0", "mir_lib-2.0", "mir_extra-1.0"}
            assert assert_installs("pip", offline.url, tmp_path, "mir-app[fast]") == expected
            assert assert_installs("uv", offline.url, tmp_path, "mir-app[fast]") == expected
    finally:
        upstream.start()


def test_a_bad_file_is_reported_and_the_next_run_completes(tmp_path, upstream):
    victim = "mir_win-1.0-py3-none-any.whl"
    (blob,) = [p for p in (upstream.data_dir / "files").rglob(victim)]
    original = blob.read_bytes()
    blob.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # same size, wrong sha256
    try:
        with mirroring(tmp_path / "mirror", upstream) as mirror:
            report = wait_idle(mirror)
            assert [error["project"] for error in report["errors"]] == ["mir-win"]
            assert "sha256" in report["errors"][0]["error"]
            assert report["last_success"] is None
            assert victim not in cached(mirror)
    finally:
        blob.write_bytes(original)
    with mirroring(tmp_path / "mirror", upstream) as mirror:
        report = wait_idle(mirror)
        assert report["errors"] == [] and report["last_success"] is not None
        assert report["files_fetched"] == 1  # the rest was kept by the failed run
        assert victim in cached(mirror)


def test_a_killed_run_resumes_without_downloading_verified_files_again(tmp_path, upstream):
    mark = upstream.log_size()
    mirror = mirroring(tmp_path / "mirror", upstream).start()
    deadline = time.monotonic() + 30
    while not cached(mirror) and time.monotonic() < deadline:
        time.sleep(0.01)
    process, mirror.process = mirror.process, None
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    kept = cached(mirror)
    assert kept
    first = fetched(upstream, mark)
    mirror.start()
    try:
        report = wait_idle(mirror)
        assert report["errors"] == []
        assert report["files_present"] >= len({n for n in kept if not n.endswith(".metadata")})
    finally:
        mirror.stop()
    again = fetched(upstream, mark)[len(first) :]
    assert not set(again) & kept  # nothing verified before the kill was fetched again
    assert {name for name in cached(mirror) if not name.endswith(".metadata")} == WANTED


def test_start_up_stops_when_the_mirror_has_no_upstream_or_a_bad_key(tmp_path):
    config = tmp_path / "ministry.toml"
    config.write_text('[mirror]\nprojects = ["x"]\n')
    process = MinistryProcess(tmp_path, "--config", str(config), startup_timeout=10)
    with pytest.raises(RuntimeError, match="needs an upstream"):
        process.start()
    config.write_text(
        'upstream = "http://127.0.0.1:9/simple"\n[mirror]\nprojects = ["x"]\nlatest = 0\n'
    )
    with pytest.raises(RuntimeError, match=r"mirror\.latest: expected a positive integer"):
        process.start()


def python(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``cwd`` with this checkout importable: a process of its own,
    as an operator's command or a second mirror would be, output kept for the asserts.
    """
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def mirror_run(where: Path, upstream: MinistryProcess) -> list[str]:
    """``ministry-admin mirror run`` on ``where``'s config, as a command line."""
    return [
        *("-m", "ministry.admin", "--config", str(where / "ministry.toml")),
        *("--data-dir", str(where), "--upstream", f"{upstream.url}/simple/", "mirror", "run"),
    ]


def test_admin_mirror_run_does_one_pass_with_a_progress_bar(tmp_path, upstream):
    where = tmp_path / "mirror"
    mirroring(where, upstream)  # writes the config files
    done = python(mirror_run(where, upstream), where, timeout=60)
    assert done.returncode == 0, done.stderr
    # Not on a terminal (a cron job's log): plain lines, no carriage returns.
    assert "\r" not in done.stderr
    assert ("[" + "#" * 30 + "] 5/5 projects") in done.stderr.splitlines()[-1]
    with MinistryProcess(where, "--offline") as offline:  # the daemon serves what it fetched
        status, page = get(f"{offline.url}/simple/mir-big/")
        assert status == 200 and b"mir_big-1.0-py3-none-any.whl" in page
    assert {name for name in cached(offline) if not name.endswith(".metadata")} == WANTED


def test_on_a_terminal_the_bar_is_redrawn_in_place(tmp_path, upstream):
    where = tmp_path / "mirror"
    mirroring(where, upstream)
    controller, terminal = pty.openpty()
    with terminal_output(controller) as output:
        done = subprocess.run(
            [sys.executable, *mirror_run(where, upstream)],
            stdout=subprocess.DEVNULL,
            stderr=terminal,
            timeout=60,
            cwd=where,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        os.close(terminal)
    assert done.returncode == 0
    drawn = output.getvalue().decode()
    assert drawn.startswith("\r[") and drawn.count("\n") == 1  # one line, redrawn in place
    # (the terminal turns the final newline into CR LF)
    assert "] 5/5 projects" in drawn.removesuffix("\r\n").rsplit("\r", 1)[-1]


@contextmanager
def terminal_output(controller: int) -> Iterator[io.BytesIO]:
    """Everything written to a pseudo-terminal, read while the block runs."""
    output = io.BytesIO()

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the other side closed
                return
            if not chunk:
                return
            output.write(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield output
    finally:
        reader.join(timeout=10)
        os.close(controller)


def test_the_redis_lease_lets_one_holder_mirror_and_expires(tmp_path):
    from redis_server import find_redis_server, shared_server

    if find_redis_server() is None:
        pytest.skip("redis-server is not installed")
    code = f"""
import sys
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react, deferLater
from ministry.stores.redis import RedisStore

async def main(reactor):
    store = RedisStore({shared_server().url!r}, "lease-test-{os.getpid()}:")
    store.startService()
    lease = store.lease("mirror")
    try:
        results = [
            await lease.acquire("a", 0.5),
            await lease.acquire("b", 0.5),  # held by a
            await lease.acquire("a", 0.5),  # renewed
            await lease.release("b"),  # not b's to release
        ]
        await deferLater(reactor, 0.7, lambda: None)  # a died: its lease expired
        results.append(await lease.acquire("b", 5))
        results.append(await lease.release("b"))
        results.append(await lease.acquire("a", 5))
        await lease.release("a")
        print(results)
    finally:
        await store.stopService()

react(lambda reactor: ensureDeferred(main(reactor)))
"""
    done = python(["-c", code], tmp_path, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True, False, True, False, True, True, True]"

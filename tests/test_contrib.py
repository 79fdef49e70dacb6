"""``contrib/ministry.service``: a unit systemd accepts, whose command really starts the index."""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from servers import REPO_ROOT, MinistryProcess, free_port

UNIT = REPO_ROOT / "contrib" / "ministry.service"
TWISTD = Path(sys.executable).parent / "twistd"


def unit_here(where: Path) -> str:
    """The unit with this test's twistd, data directory and port for the installed ones."""
    return (
        UNIT.read_text()
        .replace("/opt/ministry/bin/twistd", str(TWISTD))
        .replace("/var/lib/ministry", str(where))
    )


def exec_start(unit: str) -> list[str]:
    (line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def test_systemd_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: .ci/run installs Debian's systemd"
    unit = tmp_path / "ministry.service"
    unit.write_text(unit_here(tmp_path))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.e2e
def test_the_units_command_serves_and_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    command = exec_start(unit_here(tmp_path))
    command[command.index("--port") + 1] = f"tcp:{port}:interface=127.0.0.1"
    env = MinistryProcess(tmp_path)._child_env()
    daemon = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert daemon.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.2)
        assert (tmp_path / "data" / "ministry.sqlite3").exists()
        assert not list(tmp_path.glob("*.pid"))  # systemd supervises: no pid file
    finally:
        daemon.send_signal(signal.SIGTERM)
        output = daemon.communicate(timeout=30)[0].decode()
    # twistd ends by re-raising the signal, which systemd counts as a clean stop.
    assert daemon.returncode == -signal.SIGTERM, output
    assert "Server Shut Down." in output  # the log went to stdout, for the journal

"""A daemon that cannot start says why in one line and exits, creating nothing.

Each case runs the real ``twistd ministry`` as a user would and reads what it
printed: the message must name the option and the problem, with no
traceback, and the exit status must tell a supervisor it failed.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from servers import MinistryProcess


def failed_start(where: Path, *args: str) -> str:
    """Everything a daemon started with ``args`` printed before it exited (it must exit)."""
    daemon = MinistryProcess(where / "unused", *args)
    result = subprocess.run(
        daemon.command(),
        cwd=where,
        env=daemon._child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    return output


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("data_dir", "expected"),
    [
        ("missing/parent/data", "its parent directory {where}/missing/parent does not exist"),
        ("a-file", "--data-dir {where}/a-file: not a directory"),
        ("/sys/ministry-data", "--data-dir /sys/ministry-data: cannot create it"),
    ],
    ids=["missing-parent", "a-file", "unwritable"],
)
def test_a_data_directory_that_cannot_hold_files_is_one_line(tmp_path, data_dir, expected):
    (tmp_path / "a-file").write_text("not a directory")
    path = data_dir if data_dir.startswith("/") else str(tmp_path / data_dir)
    output = failed_start(tmp_path, "--data-dir", path)
    assert expected.format(where=tmp_path) in output
    assert not (tmp_path / "missing").exists()  # a typo is reported, not created


@pytest.mark.e2e
def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        description = f"tcp:{port}:interface=127.0.0.1"
        output = failed_start(tmp_path, "--port", description, "--data-dir", str(tmp_path))
    assert f"ministry: --port {description}: cannot listen: Address already in use" in output


@pytest.mark.e2e
def test_a_config_file_that_cannot_be_read_is_one_line(tmp_path):
    output = failed_start(tmp_path, "--config", str(tmp_path / "nowhere.toml"))
    assert f"ministry: --config: cannot read {tmp_path}/nowhere.toml" in output

"""``--access-log``: where a real daemon writes its access log, or that it writes none."""

from __future__ import annotations

import re
import urllib.request

import pytest
from servers import MinistryProcess

pytestmark = pytest.mark.e2e

#: The combined log format twisted.web writes, for one GET of ``/simple/``.
COMBINED = re.compile(
    r'^"127\.0\.0\.1" - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
    r'"GET /simple/ HTTP/1\.1" 200 \d+ "-" "ministry-test/1"$'
)


def fetch(daemon: MinistryProcess, times: int) -> None:
    for _ in range(times):
        request = urllib.request.Request(
            daemon.url + "/simple/", headers={"User-Agent": "ministry-test/1"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


def test_the_access_log_goes_to_the_named_file_one_line_per_request(tmp_path):
    access = tmp_path / "access.log"
    with MinistryProcess(tmp_path / "data", "--access-log", str(access)) as daemon:
        mark = daemon.log_size()
        fetch(daemon, 25)
        # Written as each request ends, not when the daemon stops.
        lines = [line for line in access.read_text().splitlines() if "ministry-test" in line]
        assert len(lines) == 25
        assert all(COMBINED.match(line) for line in lines), lines[0]
        assert "GET /simple/" not in daemon.log_since(mark)


def test_the_access_log_can_be_turned_off(tmp_path):
    with MinistryProcess(tmp_path / "data", "--access-log", "off") as daemon:
        mark = daemon.log_size()
        fetch(daemon, 3)
        daemon.stop()
        assert "GET /simple/" not in daemon.log_since(mark)
    assert not (tmp_path / "data" / "off").exists()  # the daemon runs in its data dir


def test_by_default_the_access_log_is_in_twistds_log(tmp_path):
    with MinistryProcess(tmp_path / "data") as daemon:
        mark = daemon.log_size()
        fetch(daemon, 2)
        assert daemon.log_since(mark).count('"GET /simple/ HTTP/1.1" 200') == 2


def test_the_access_log_file_is_never_rotated_by_ministry(tmp_path):
    """twisted.web's Site would start a new file every megabyte and keep them all."""
    access = tmp_path / "access.log"
    agent = "ministry-test/1 " + "x" * 8000  # 150 lines of 8 kB: past one megabyte
    with MinistryProcess(tmp_path / "data", "--access-log", str(access)) as daemon:
        for _ in range(150):
            request = urllib.request.Request(daemon.url + "/simple/", headers={"User-Agent": agent})
            with urllib.request.urlopen(request, timeout=10):
                pass
        assert access.stat().st_size > 1_000_000
        assert sorted(path.name for path in tmp_path.iterdir()) == ["access.log", "data"]
        assert sum(agent in line for line in access.read_text().splitlines()) == 150

"""``--access-log``: where a real daemon writes its access log, or that it writes none."""

from __future__ import annotations

import http.client
import re
import threading
import time
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


#: twistd's own prefix of a line twisted.web logs: its timestamp and the event's system.
TWISTD_PREFIX = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[twisted\.python\.log#info\] "


def test_by_default_the_access_log_is_in_twistds_log_with_twistds_prefix(tmp_path):
    with MinistryProcess(tmp_path / "data") as daemon:
        mark = daemon.log_size()
        fetch(daemon, 2)
        logged = daemon.log_since(mark)
        lines = [line for line in logged.splitlines() if "ministry-test" in line]
        assert len(lines) == 2  # written as each request ends, not when the daemon stops
        twistd_line = re.compile(TWISTD_PREFIX + COMBINED.pattern[1:])
        assert all(twistd_line.match(line) for line in lines), lines


@pytest.mark.parametrize("where", ["twistd", "file"])
def test_no_line_is_lost_when_the_daemon_stops_under_load(tmp_path, where):
    """SIGTERM while 8 clients keep asking: every answer a client got has its line."""
    access = tmp_path / "access.log"
    extra = ("--access-log", str(access)) if where == "file" else ()
    daemon = MinistryProcess(tmp_path / "data", *extra).start()
    mark = daemon.log_size()
    answered: list[int] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
        count = 0
        try:
            while True:
                connection.request("GET", "/simple/", headers={"User-Agent": "ministry-test/1"})
                response = connection.getresponse()
                response.read()
                count += response.status == 200
        except (OSError, http.client.HTTPException):
            answered.append(count)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    daemon.stop()
    for thread in threads:
        thread.join(10)
    text = access.read_text() if where == "file" else daemon.log_since(mark)
    logged = sum("ministry-test" in line for line in text.splitlines())
    assert sum(answered) > 100
    # A request may be logged whose answer the client did not read before the end.
    assert sum(answered) <= logged <= sum(answered) + len(threads)


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

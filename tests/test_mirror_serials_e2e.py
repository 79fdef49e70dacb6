"""The mirror against a real ministry upstream: one index read instead of a 304 a project.

The upstream is a ``twistd ministry`` holding 20 projects (the mirror reads
the index from 20 projects on): its ``/simple/`` JSON index gives each
project's ``_last-serial``, and its pages their ``X-PyPI-Last-Serial``. A
run after new releases in two projects must ask for those two pages
alone and fetch the new files; a run after no change asks for
no page and no file. Its access log says exactly what was asked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from archive_factory import make_wheel, wheel_filename
from http_harness import post_file
from servers import MinistryProcess
from test_mirror import fetched, wait_idle

pytestmark = pytest.mark.e2e

NAMES = [f"ser-p{number:02d}" for number in range(20)]
CONFIG = f"""
[mirror]
every = "1h"
projects = [{", ".join(f'"{name}"' for name in NAMES)}]
dependencies = false
latest = 2
"""
PAGE_ASKED = re.compile(r'"GET /simple/(ser-p\d+)/ HTTP/1\.1" (\d{3})')
INDEX_ASKED = re.compile(r'"GET /simple/ HTTP/1\.1" 200')


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    with MinistryProcess(tmp_path_factory.mktemp("upstream")) as process:
        for name in NAMES:
            post_file(
                process.url, name, "1.0", wheel_filename(name, "1.0"), make_wheel(name, "1.0")
            )
        yield process


def mirroring(where: Path, upstream: MinistryProcess) -> MinistryProcess:
    where.mkdir(parents=True, exist_ok=True)
    (where / "ministry.toml").write_text(CONFIG)
    return MinistryProcess(
        where,
        *("--config", str(where / "ministry.toml"), "--upstream", f"{upstream.url}/simple/"),
    )


def asked(upstream: MinistryProcess, mark: int) -> tuple[int, dict[str, str]]:
    """How often the index was read since ``mark``, and each page asked with its status."""
    text = upstream.log_since(mark)
    return len(INDEX_ASKED.findall(text)), dict(PAGE_ASKED.findall(text))


def test_a_run_asks_for_the_pages_whose_serial_moved_and_no_other(tmp_path, upstream):
    with mirroring(tmp_path / "mirror", upstream) as mirror:
        report = wait_idle(mirror)
        assert (report["errors"], report["files_fetched"]) == ([], len(NAMES))

        new = []
        for name, version in (("ser-p03", "2.0"), ("ser-p05", "1.1")):
            new.append(wheel_filename(name, version))
            post_file(upstream.url, name, version, new[-1], make_wheel(name, version))
        mark = upstream.log_size()
        mirror.restart()
        report = wait_idle(mirror)
        assert report["errors"] == []
        assert asked(upstream, mark) == (1, {"ser-p03": "200", "ser-p05": "200"})
        assert sorted(fetched(upstream, mark)) == new

        mark = upstream.log_size()
        mirror.restart()
        report = wait_idle(mirror)
        assert report["errors"] == []
        assert asked(upstream, mark) == (1, {})
        assert fetched(upstream, mark) == []
        assert report["files_present"] == len(NAMES) + 2
        assert "20 pages current by their serial" in mirror.log_text()

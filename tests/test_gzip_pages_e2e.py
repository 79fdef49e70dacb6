"""Real pip and uv install from a big project through its gzip page.

Both send ``Accept-Encoding: gzip`` for simple pages (pip through urllib3,
uv through reqwest) and must decode the compressed copy a big page is served
as. A real ``twistd ministry`` holds a project whose page is over
:data:`~ministry.web.http.rendered.GZIP_MIN`; its access log shows each
client was sent the compressed page (its size is the gzip copy's), and the
install must still give the right version.
"""

from __future__ import annotations

import gzip
import http.client
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from accept_headers import JSON_V1
from accept_headers import PIP as PIP_ACCEPT
from archive_factory import make_wheel, wheel_filename
from http_harness import post_file
from servers import MinistryProcess, client_env
from test_e2e_clients import PIP, UV, access_lines, run

from ministry.web.http.rendered import GZIP_MIN

pytestmark = pytest.mark.e2e

PROJECT = "gzip-big"
#: Releases enough for a JSON page over GZIP_MIN (checked below), quick to upload.
RELEASES = 60
NEWEST = f"1.{RELEASES - 1}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    with MinistryProcess(tmp_path_factory.mktemp("gzip") / "data") as process:
        for n in range(RELEASES):
            version = f"1.{n}"
            wheel = make_wheel(PROJECT, version)
            post_file(process.url, PROJECT, version, wheel_filename(PROJECT, version), wheel)
        yield process


def get(server: MinistryProcess, headers: dict[str, str]) -> tuple[dict[str, str], bytes]:
    """(lower-cased headers, raw body) of the project page: http.client decodes nothing."""
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    try:
        connection.request("GET", f"/simple/{PROJECT}/", headers=headers)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, body
        return {key.lower(): value for key, value in response.getheaders()}, body
    finally:
        connection.close()


@pytest.fixture(scope="module")
def packed(server: MinistryProcess) -> bytes:
    """The JSON page's gzip copy (what pip's and uv's Accept get), once it is made."""
    for _ in range(500):
        headers, body = get(server, {"Accept": PIP_ACCEPT, "Accept-Encoding": "gzip"})
        if headers.get("content-encoding") == "gzip":
            assert headers["content-type"] == JSON_V1
            assert headers["vary"] == "Accept, Accept-Encoding"
            _, identity = get(server, {"Accept": PIP_ACCEPT})
            assert len(identity) >= GZIP_MIN and gzip.decompress(body) == identity
            return body
        time.sleep(0.02)
    raise AssertionError("the page never came compressed")


def sizes_sent(log: str, agent: str) -> set[int]:
    """Body sizes of the 200 answers to ``agent``'s requests for the project page."""
    lines = [line for line in access_lines(log, f"/simple/{PROJECT}/ ") if agent in line]
    assert lines, log
    return {int(line.split('" 200 ')[1].split()[0]) for line in lines if '" 200 ' in line}


@pytest.mark.parametrize("client", ["pip", "uv"])
def test_an_installer_reads_the_compressed_page(
    server: MinistryProcess, packed: bytes, client: str, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    index = ("--index-url", f"{server.url}/simple/")
    if client == "pip":
        command = [*PIP, "install", *index, "--no-cache-dir", "--target", str(target)]
    else:
        command = [*UV, "pip", "install", *index, "--no-cache", "--python", sys.executable]
        command += ["--target", str(target)]
    mark = server.log_size()
    result = run([*command, PROJECT], client_env(tmp_path / "home"))
    assert result.returncode == 0, result.output
    module = (target / "gzip_big" / "__init__.py").read_text()
    assert f'__version__ = "{NEWEST}"' in module
    assert sizes_sent(server.log_since(mark), f"{client}/") == {len(packed)}

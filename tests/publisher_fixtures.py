"""What the publishing-client tests share: two indexes, three ways in, and the checks.

Each publisher (poetry, pdm, hatch, flit) is tried three ways, the
:data:`MODES`: anonymously on an open index, and on a ``--private`` index
(uploads and reads need credentials) with alice's password and with her API
token. A :class:`Target` says where and as whom; a mode publishes its own
version there (``1.0``, or ``1.1`` for the token on the private index), so
every mode's files are told apart. :func:`assert_landed` checks what the
index lists against the bytes the tool had; :func:`installed_version`
installs it back with uv.

Every tool runs from this interpreter's ``bin`` directory (:func:`tool`),
with a throw-away HOME (:func:`servers.client_env`) so that no user
configuration, keyring or cache plays a part, and every URL it is given is
the loopback daemon's. The fixtures are session-wide (``conftest.py`` loads
this module as a plugin): the poetry, pdm and other publisher tests share
the two daemons, whose start, with ``ministry-admin`` making alice, is the
slowest part of the set.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from base64 import b64encode
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from accept_headers import JSON_V1
from archive_factory import make_sdist, make_wheel, sdist_filename, wheel_filename
from servers import MinistryProcess, client_env
from test_auth_clients import PrivateProcess, admin
from test_e2e_clients import UV, run, sha256

USER, PASSWORD = "alice", "alice-publishes-pw"
MODES = ("open", "password", "token")


def tool(name: str) -> str:
    """A publisher's console script, next to the running interpreter (installed by ``.[test]``)."""
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"no {name} next to {sys.executable}: pip install -e '.[test]'"
    return str(path)


@dataclass(frozen=True)
class Target:
    """Where a mode publishes, the version it publishes, and the credentials it uses."""

    mode: str
    index: MinistryProcess
    version: str
    username: str | None = None
    password: str | None = None

    @property
    def private(self) -> bool:
        return self.username is not None

    def url(self, path: str, *, credentials: bool = False) -> str:
        """``path`` on the index; with alice's password in it when asked on the private index."""
        host = self.index.url.removeprefix("http://")
        if credentials and self.private:
            host = f"{USER}:{PASSWORD}@{host}"
        return f"http://{host}{path}"


@pytest.fixture(scope="session")
def open_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    """An index without users: anyone may upload."""
    with MinistryProcess(tmp_path_factory.mktemp("open-index") / "data") as index:
        yield index


@pytest.fixture(scope="session")
def private_index(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[MinistryProcess, str]]:
    """A ``--private`` index with alice, made by ``ministry-admin``; and a token of hers."""
    data_dir = tmp_path_factory.mktemp("private-index") / "data"
    admin(data_dir, "user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
    token = admin(data_dir, "token", "create", USER).stdout.strip()
    assert token.startswith("ministry-"), token
    with PrivateProcess(data_dir, "--private") as index:
        yield index, token


@pytest.fixture(scope="session")
def publish_targets(
    open_index: MinistryProcess, private_index: tuple[MinistryProcess, str]
) -> dict[str, Target]:
    index, token = private_index
    return {
        "open": Target("open", open_index, "1.0"),
        "password": Target("password", index, "1.0", USER, PASSWORD),
        "token": Target("token", index, "1.1", "__token__", token),
    }


def write_dists(directory: Path, project: str, version: str) -> list[Path]:
    """A wheel and an sdist of ``project`` ``version`` in ``directory``, made in memory."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / wheel_filename(project, version)
    wheel.write_bytes(make_wheel(project, version))
    sdist = directory / sdist_filename(project, version)
    sdist.write_bytes(make_sdist(project, version))
    return [wheel, sdist]


def listed_files(target: Target, project: str) -> dict[str, str]:
    """The project's files on the index, filename -> sha256, read as alice on the private one."""
    headers = {"Accept": JSON_V1}
    if target.private:
        credentials = b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        headers["Authorization"] = f"Basic {credentials}"
    request = urllib.request.Request(target.url(f"/simple/{project}/"), headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        page = json.loads(response.read())
    return {entry["filename"]: entry["hashes"]["sha256"] for entry in page["files"]}


def assert_landed(target: Target, project: str, files: Iterable[Path]) -> None:
    """Every one of ``files`` is on the index under its name, with its sha256."""
    listed = listed_files(target, project)
    for path in files:
        assert listed.get(path.name) == sha256(path), (path.name, listed)


def installed_version(target: Target, project: str, where: Path) -> str:
    """Install ``project`` from the target's index with uv; the ``__version__`` it got."""
    where.mkdir(parents=True, exist_ok=True)
    result = run(
        [
            *UV,
            *("pip", "install", "--no-cache", "--python", sys.executable),
            *("--index-url", target.url("/simple/", credentials=True)),
            *("--target", str(where / "target"), f"{project}=={target.version}"),
        ],
        client_env(where / "home"),
    )
    assert result.returncode == 0, result.output
    module = project.replace("-", "_")
    text = (where / "target" / module / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    assert found, text
    return found.group(1)

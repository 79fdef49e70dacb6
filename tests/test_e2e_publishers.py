"""hatch, flit and uv publish to a real daemon, open and private (issue 18, "Every client").

hatch and flit publish the way their documentation says, each in the three
:data:`publisher_fixtures.MODES`; each upload is checked on the simple page
(names and sha256) and installed back. uv's publish without credentials
asks ``https://HOST/_/oidc/audience`` (https whatever the index's scheme)
before giving up: the daemon must answer at once, not let it wait out a
connect timeout. poetry and pdm have files of their own
(``test_e2e_publishers_poetry.py``, ``test_e2e_publishers_pdm.py``).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from publisher_fixtures import (
    MODES,
    PASSWORD,
    USER,
    Target,
    assert_landed,
    installed_version,
    tool,
    write_dists,
)
from servers import MinistryProcess, client_env
from test_e2e_clients import UV, fetch, run

from ministry.core.commands import PASSWORD as PASSWORD_MARK
from ministry.core.commands import USERNAME
from ministry.core.commands import pypirc as help_pypirc

pytestmark = pytest.mark.e2e


# hatch.


@pytest.mark.parametrize("mode", MODES)
def test_hatch_publish(publish_targets: dict[str, Target], mode: str, tmp_path: Path) -> None:
    target = publish_targets[mode]
    files = write_dists(tmp_path / "dist", "pub-hatch", target.version)
    command = [tool("hatch"), "publish", "--no-prompt", "-r", target.url("/legacy/")]
    env = client_env(tmp_path / "home")
    if mode == "open":
        command += ["-u", "anyone", "-a", "anything"]  # hatch insists on a user, even here
    elif mode == "password":
        command += ["-u", USER, "-a", PASSWORD]
    else:  # the token from the environment, as in CI
        env.update(HATCH_INDEX_USER=target.username, HATCH_INDEX_AUTH=target.password)
    result = run([*command, *map(str, files)], env)
    assert result.returncode == 0, result.output
    assert_landed(target, "pub-hatch", files)
    assert installed_version(target, "pub-hatch", tmp_path / "install") == target.version


# flit: it builds, then uploads; the repository comes from ~/.pypirc or FLIT_INDEX_URL.


def flit_project(where: Path, version: str) -> Path:
    """A flit project: the version and description come from the module."""
    (where / "pub_flit").mkdir(parents=True)
    (where / "pub_flit" / "__init__.py").write_text(
        f'"""A sample published with flit."""\n\n__version__ = "{version}"\n'
    )
    (where / "pyproject.toml").write_text(
        "[build-system]\n"
        'requires = ["flit_core>=3.4"]\n'
        'build-backend = "flit_core.buildapi"\n\n'
        '[project]\nname = "pub-flit"\ndynamic = ["version", "description"]\n'
    )
    return where


def pypirc(target: Target) -> str:
    """The upload help page's ``~/.pypirc`` for the target's index, with its credentials."""
    text = help_pypirc(target.index.url).text
    return text.replace(f"= {USERNAME}", f"= {target.username}").replace(
        f"= {PASSWORD_MARK}", f"= {target.password}"
    )


@pytest.mark.parametrize("mode", MODES)
def test_flit_publish(publish_targets: dict[str, Target], mode: str, tmp_path: Path) -> None:
    target = publish_targets[mode]
    project = flit_project(tmp_path / "project", target.version)
    env = client_env(tmp_path / "home")
    command = [tool("flit"), "--ini-file", str(project / "pyproject.toml"), "publish"]
    if mode == "password":
        (tmp_path / "home" / ".pypirc").write_text(pypirc(target))
        command += ["--repository", "ministry"]
    else:  # flit needs some user, even on an open index
        env.update(
            FLIT_INDEX_URL=target.url("/legacy/"),
            FLIT_USERNAME=target.username or "anyone",
            FLIT_PASSWORD=target.password or "anything",
        )
    result = run(command, env)
    assert result.returncode == 0, result.output
    files = sorted((project / "dist").iterdir())
    assert {path.suffix for path in files} == {".whl", ".gz"}, files
    assert_landed(target, "pub-flit", files)
    assert installed_version(target, "pub-flit", tmp_path / "install") == target.version


# uv: no credentials, and the trusted-publishing probe.


def test_trusted_publishing_is_refused_at_once_with_a_reason(open_index: MinistryProcess) -> None:
    status, headers, body = fetch(f"{open_index.url}/_/oidc/audience")
    assert status == 404
    assert headers["content-type"].startswith("text/plain")
    assert b"trusted publishing (OIDC) is not offered" in body


def test_a_tls_handshake_on_the_plain_port_is_refused_at_once(open_index: MinistryProcess) -> None:
    """What an ``https://`` client sends first gets a 400 now, not a wait for a line end."""
    with socket.create_connection(("127.0.0.1", open_index.port), timeout=5) as connection:
        connection.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32))
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"this port speaks plain HTTP, not TLS" in answer


def test_uv_publish_without_credentials_gives_up_at_once(
    open_index: MinistryProcess, tmp_path: Path
) -> None:
    """uv asks for an OIDC audience over https first; the plain port refuses it at once.

    With one try (``UV_HTTP_RETRIES=0``) uv used to wait out its 10 s connect
    timeout on the TLS handshake (47 s with its default three retries); now the
    handshake is refused, uv reports that trusted publishing failed and, as it
    does not upload without credentials, says they are missing.
    """
    wheel = write_dists(tmp_path / "dist", "uv-anonymous", "1.0")[0]
    env = client_env(tmp_path / "home", {"UV_HTTP_RETRIES": "0"})
    started = time.monotonic()
    result = run([*UV, "publish", "--publish-url", f"{open_index.url}/legacy/", str(wheel)], env)
    elapsed = time.monotonic() - started
    assert result.returncode != 0, result.output
    assert "Missing credentials" in result.output
    assert "/_/oidc/audience" in result.output and "timed out" not in result.output
    assert elapsed < 8, f"uv took {elapsed:.1f} s\n{result.output}"

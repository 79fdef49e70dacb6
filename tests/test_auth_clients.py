"""Users, tokens, owners and yanks with real clients against a real ``--private`` daemon.

One ``twistd ministry --private`` serves the module, its users made with the
real ``ministry-admin`` on the same data directory: alice (who uploads
ministry-sample first, and so owns it), bob (another user) and three tokens
of alice's: one for every project, one limited to another project and one
that only reads. Then twine uploads with a password and with tokens (the
read token refused), pip and uv install with credentials in the URL (the
read token's too) and from a netrc file, pip skips a release that
``ministry-admin yank`` yanked while the daemon ran, unless it is pinned,
and bob publishes through a team until ``ministry-admin team remove-member``.
Tests run in file order and build on one another, as a team's day would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from base64 import b64encode
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from accept_headers import JSON_V1
from servers import REPO_ROOT, MinistryProcess, client_env

pytestmark = pytest.mark.e2e

PROJECT = "ministry-sample"
PIP = (sys.executable, "-m", "pip")
UV = (sys.executable, "-m", "uv")
PASSWORDS = {"alice": "alice-s3cret-pw", "bob": "bob-s3cret-pw"}


class PrivateProcess(MinistryProcess):
    ready_path = "/health"  # everything else answers 401 without credentials


def run(args: Sequence[str], env: dict[str, str], stdin: str | None = None):
    result = subprocess.run(
        list(args), input=stdin, capture_output=True, text=True, env=env, timeout=180
    )
    result.output = f"$ {' '.join(args)}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    return result


def admin(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ministry.admin", "--data-dir", str(data_dir), *args]
    env = client_env(extra={"PYTHONPATH": str(REPO_ROOT)})
    result = run(command, env, stdin)
    assert result.returncode == 0, result.output
    return result


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("private") / "data"


@pytest.fixture(scope="module")
def tokens(data_dir: Path) -> dict[str, str]:
    """The users, made before the daemon starts; alice's tokens, by what they are for."""
    for user, password in PASSWORDS.items():
        admin(data_dir, "user", "add", user, "--password-stdin", stdin=password + "\n")
    everything = admin(data_dir, "token", "create", "alice").stdout.strip()
    elsewhere = admin(data_dir, "token", "create", "alice", "--project", "Other").stdout.strip()
    read = admin(data_dir, "token", "create", "alice", "--scope", "read").stdout.strip()
    return {"everything": everything, "elsewhere": elsewhere, "read": read}


@pytest.fixture(scope="module")
def server(data_dir: Path, tokens: dict[str, str]) -> Iterator[MinistryProcess]:
    with PrivateProcess(data_dir, "--private") as process:
        yield process


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return client_env(tmp_path_factory.mktemp("client-home"))


def twine(server: MinistryProcess, env, user: str, password: str, files: Sequence[Path]):
    return run(
        [
            *(sys.executable, "-m", "twine", "upload", "--repository-url", f"{server.url}/"),
            *("-u", user, "-p", password, "--non-interactive", "--disable-progress-bar"),
            *map(str, files),
        ],
        env,
    )


def simple_json(server: MinistryProcess, user: str = "alice") -> dict:
    request = urllib.request.Request(
        f"{server.url}/simple/{PROJECT}/",
        headers={
            "Accept": JSON_V1,
            "Authorization": "Basic " + b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def with_credentials(server: MinistryProcess, user: str = "alice") -> str:
    return f"http://{user}:{PASSWORDS[user]}@127.0.0.1:{server.port}/simple/"


def pip_install(index_url: str, target: Path, requirement: str, env: dict[str, str]):
    command = [*PIP, "install", "--index-url", index_url, "--no-cache-dir", "--target"]
    return run([*command, str(target), requirement], env)


def uv_install(index_url: str, target: Path, requirement: str, env: dict[str, str]):
    command = [*UV, "pip", "install", "--index-url", index_url, "--no-cache"]
    return run([*command, "--python", sys.executable, "--target", str(target), requirement], env)


def installed_version(target: Path) -> str:
    text = (target / "ministry_sample" / "__init__.py").read_text()
    return text.split('__version__ = "')[1].split('"')[0]


# -- publishing ----------------------------------------------------------------------


def test_twine_with_a_wrong_password_gets_401(server, env, sample_dists) -> None:
    result = twine(server, env, "alice", "not-her-password", [sample_dists["1.0"]["wheel"]])
    assert result.returncode != 0
    assert "401" in result.output, result.output
    assert "Wrong username or password" in result.output


def test_twine_with_a_password_publishes_and_its_user_owns_the_project(
    server, env, sample_dists, data_dir
) -> None:
    files = [sample_dists["1.0"]["wheel"], sample_dists["1.0"]["sdist"]]
    result = twine(server, env, "alice", PASSWORDS["alice"], files)
    assert result.returncode == 0, result.output
    owners = admin(data_dir, "project", "owners", PROJECT).stdout
    assert owners.split() == ["owner", "alice"]


def test_another_users_upload_to_the_project_is_403(server, env, sample_dists) -> None:
    result = twine(server, env, "bob", PASSWORDS["bob"], [sample_dists["1.1"]["wheel"]])
    assert result.returncode != 0
    assert "403" in result.output, result.output
    assert "bob is not an owner or maintainer of ministry-sample" in result.output


def test_a_token_limited_to_another_project_is_403(server, env, sample_dists, tokens) -> None:
    result = twine(server, env, "__token__", tokens["elsewhere"], [sample_dists["1.1"]["wheel"]])
    assert result.returncode != 0
    assert "403" in result.output, result.output
    assert "This token is limited to other" in result.output


def test_twine_with_a_read_token_is_refused_as_read_only(server, env, sample_dists, tokens):
    result = twine(server, env, "__token__", tokens["read"], [sample_dists["1.1"]["wheel"]])
    assert result.returncode != 0
    assert "403" in result.output, result.output
    assert "This token is read-only" in result.output


def test_twine_with_a_token_publishes(server, env, sample_dists, tokens) -> None:
    files = [sample_dists["1.1"]["wheel"], sample_dists["1.1"]["sdist"]]
    result = twine(server, env, "__token__", tokens["everything"], files)
    assert result.returncode == 0, result.output
    versions = simple_json(server)["versions"]
    assert versions == ["1.0", "1.1"]


# -- installing from a private index -------------------------------------------------


def test_pip_without_credentials_is_refused(server, env, tmp_path) -> None:
    mark = server.log_size()
    result = pip_install(f"{server.url}/simple/", tmp_path / "t", PROJECT, env)
    assert result.returncode != 0
    assert "from versions: none" in result.output, result.output
    refused = [line for line in server.log_since(mark).splitlines() if '" 401 ' in line]
    assert any(f"/simple/{PROJECT}/" in line and "pip/" in line for line in refused)


def test_pip_installs_with_credentials_in_the_url(server, env, tmp_path) -> None:
    target = tmp_path / "target"
    result = pip_install(with_credentials(server), target, PROJECT, env)
    assert result.returncode == 0, result.output
    assert installed_version(target) == "1.1"


def test_pip_and_uv_install_with_a_read_token_in_the_url(server, env, tokens, tmp_path) -> None:
    url = f"http://__token__:{tokens['read']}@127.0.0.1:{server.port}/simple/"
    result = pip_install(url, tmp_path / "pip", PROJECT, env)
    assert result.returncode == 0, result.output
    assert installed_version(tmp_path / "pip") == "1.1"
    result = uv_install(url, tmp_path / "uv", f"{PROJECT}==1.0", env)
    assert result.returncode == 0, result.output
    assert installed_version(tmp_path / "uv") == "1.0"


def test_pip_installs_with_credentials_from_netrc(server, tmp_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login bob password {PASSWORDS['bob']}\n")
    netrc.chmod(0o600)
    target = tmp_path / "target"
    # pip reads ~/.netrc, and HOME is this test's own.
    result = pip_install(f"{server.url}/simple/", target, f"{PROJECT}==1.0", client_env(home))
    assert result.returncode == 0, result.output
    assert installed_version(target) == "1.0"


def test_uv_installs_with_credentials_in_the_url(server, env, tmp_path) -> None:
    target = tmp_path / "target"
    result = uv_install(with_credentials(server), target, PROJECT, env)
    assert result.returncode == 0, result.output
    assert installed_version(target) == "1.1"


def test_uv_installs_with_credentials_from_the_netrc_env_var(server, env, tmp_path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin alice\npassword {PASSWORDS['alice']}\n")
    netrc.chmod(0o600)
    target = tmp_path / "target"
    result = uv_install(
        f"{server.url}/simple/", target, f"{PROJECT}==1.0", {**env, "NETRC": str(netrc)}
    )
    assert result.returncode == 0, result.output
    assert installed_version(target) == "1.0"


# -- yanking ---------------------------------------------------------------------------


def test_pip_skips_a_yanked_release_unless_it_is_pinned(server, env, data_dir, tmp_path) -> None:
    # The admin command writes to the daemon's database from another process:
    # the daemon's cached pages must hear of it within a few seconds.
    admin(data_dir, "yank", PROJECT, "1.1", "--reason", "broken build")
    deadline = time.monotonic() + 10
    while simple_json(server)["files"][-1]["yanked"] != "broken build":
        assert time.monotonic() < deadline, simple_json(server)
        time.sleep(0.1)

    unpinned = tmp_path / "unpinned"
    result = pip_install(with_credentials(server), unpinned, PROJECT, env)
    assert result.returncode == 0, result.output
    assert installed_version(unpinned) == "1.0"

    pinned = tmp_path / "pinned"
    result = pip_install(with_credentials(server), pinned, f"{PROJECT}==1.1", env)
    assert result.returncode == 0, result.output
    assert installed_version(pinned) == "1.1"
    assert "yanked" in result.output and "broken build" in result.output


# -- teams -------------------------------------------------------------------------------


def test_a_team_member_publishes_until_removed_while_the_daemon_runs(
    server, env, sample_dists, data_dir
) -> None:
    """Made and changed with ``ministry-admin`` in another process: effective at once."""
    wheel = [sample_dists["1.0"]["wheel"]]  # the same bytes again: 200 when allowed
    admin(data_dir, "team", "add", "devs")
    admin(data_dir, "team", "add-member", "devs", "bob")
    admin(data_dir, "project", "add-maintainer", PROJECT, "@devs")
    assert admin(data_dir, "project", "owners", PROJECT).stdout.split() == [
        *("owner", "alice", "maintainer", "@devs")
    ]
    result = twine(server, env, "bob", PASSWORDS["bob"], wheel)
    assert result.returncode == 0, result.output
    page = urllib.request.Request(
        f"{server.url}/project/{PROJECT}/",
        headers={
            "Authorization": "Basic " + b64encode(f"bob:{PASSWORDS['bob']}".encode()).decode()
        },
    )
    with urllib.request.urlopen(page, timeout=10) as response:
        assert '<span class="team">@devs</span> (team), maintainer' in response.read().decode()

    admin(data_dir, "team", "remove-member", "devs", "bob")
    result = twine(server, env, "bob", PASSWORDS["bob"], wheel)
    assert result.returncode != 0
    assert "bob is not an owner or maintainer of ministry-sample" in result.output
    listed = admin(data_dir, "team", "list").stdout
    assert listed.strip() == f"@devs\t-\t{PROJECT} (maintainer)"
    history = admin(data_dir, "audit").stdout
    assert "team\t@devs\t\tbob removed" in history and "@devs: maintainer" in history


# -- the same with Redis ---------------------------------------------------------------


def test_with_redis_the_admin_command_and_the_daemon_share_users_and_yanks(
    tmp_path, env, sample_dists
) -> None:
    """Users made by ``ministry-admin --redis`` log in; its yank reaches the daemon's pages."""
    from redis_server import RedisServer

    with RedisServer() as redis:
        data = tmp_path / "data"
        store_args = ("--redis", redis.url, "--redis-prefix", "auth-e2e:")
        admin(
            data, *store_args, "user", "add", "alice", "--password-stdin", stdin="alice-s3cret-pw\n"
        )
        with PrivateProcess(data, "--private", *store_args) as server:
            files = [sample_dists["1.0"]["wheel"], sample_dists["1.1"]["wheel"]]
            assert twine(server, env, "alice", "wrong", files[:1]).returncode != 0
            result = twine(server, env, "alice", PASSWORDS["alice"], files)
            assert result.returncode == 0, result.output
            admin(data, *store_args, "yank", PROJECT, "1.1")
            deadline = time.monotonic() + 10
            while simple_json(server)["files"][-1]["yanked"] is False:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            target = tmp_path / "target"
            installed = pip_install(with_credentials(server), target, PROJECT, env)
            assert installed.returncode == 0, installed.output
            assert installed_version(target) == "1.0"

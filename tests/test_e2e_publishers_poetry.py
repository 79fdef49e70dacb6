"""poetry publishes to a real daemon and installs back from it (issue 18, "Every client").

The repository is named with ``poetry config repositories.ministry URL`` (or
``POETRY_REPOSITORIES_MINISTRY_URL``), as the upload help page says, and
poetry publishes there in each of the
:data:`publisher_fixtures.MODES`: anonymously, with ``-u``/``-p``, and with a
token from ``POETRY_PYPI_TOKEN_MINISTRY``. Then a consumer project adds the
package from the private index with ``poetry source add`` and ``http-basic``
credentials, and installs it again from its lock into a fresh environment,
as a CI job does.

The configuration that works on a private index: the source has the same
name as the publishing repository, and ``http-basic.<that name>`` holds the
credentials. File URLs (``/packages/...``) are under neither the source's
URL (``/simple/``) nor the repository's (``/legacy/``); poetry then takes
the credentials of a repository on the same host, and when that is a
repository without ``http-basic`` credentials of its own (a second name for
publishing, or one with only a ``pypi-token``), the download gets a 401.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from publisher_fixtures import (
    MODES,
    PASSWORD,
    USER,
    Target,
    assert_landed,
    tool,
    write_dists,
)
from servers import client_env
from test_e2e_clients import run

pytestmark = pytest.mark.e2e

PROJECT = "pub-poetry"


def poetry_env(home: Path, **extra: str) -> dict[str, str]:
    """A loopback-only environment for poetry: its virtualenvs in the project, without pip."""
    env = client_env(
        home,
        {"POETRY_VIRTUALENVS_IN_PROJECT": "true", "POETRY_VIRTUALENVS_OPTIONS_NO_PIP": "true"},
    )
    env.pop("VIRTUAL_ENV", None)  # an active virtualenv would be the one poetry installs into
    env.update(extra)
    return env


def poetry(project: Path, env: dict[str, str], *args: str):
    return run([tool("poetry"), "--no-interaction", "--directory", str(project), *args], env)


@pytest.fixture(scope="module")
def published(
    publish_targets: dict[str, Target], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[object, list[Path]]]:
    """``poetry publish -r ministry`` in each mode: (its result, the files it had in dist/)."""
    done = {}
    for mode in MODES:
        target = publish_targets[mode]
        work = tmp_path_factory.mktemp(f"poetry-{mode}")
        project = work / "project"
        files = write_dists(project / "dist", PROJECT, target.version)
        (project / "pyproject.toml").write_text(
            f'[project]\nname = "{PROJECT}"\nversion = "{target.version}"\n'
        )
        env = poetry_env(work / "home")
        command = ["publish", "-r", "ministry"]
        if mode == "open":  # configured for good, as a person does
            configured = poetry(project, env, "config", "repositories.ministry", target.url("/"))
            assert configured.returncode == 0, configured.output
        else:  # configured from the environment, as in CI
            env["POETRY_REPOSITORIES_MINISTRY_URL"] = target.url("/legacy/")
        if mode == "password":
            command += ["-u", USER, "-p", PASSWORD]
        elif mode == "token":
            env["POETRY_PYPI_TOKEN_MINISTRY"] = target.password
        done[mode] = (poetry(project, env, *command), files)
    return done


@pytest.mark.parametrize("mode", MODES)
def test_poetry_publish(published, publish_targets: dict[str, Target], mode: str) -> None:
    result, files = published[mode]
    assert result.returncode == 0, result.output
    assert f"Publishing {PROJECT} ({publish_targets[mode].version}) to ministry" in result.output
    assert_landed(publish_targets[mode], PROJECT, files)


def test_poetry_adds_from_the_private_index_with_http_basic_credentials(
    published, publish_targets: dict[str, Target], tmp_path: Path
) -> None:
    token = publish_targets["token"]  # published 1.1, the newest version there
    assert published["token"][0].returncode == 0, published["token"][0].output
    consumer = tmp_path / "consumer"
    consumer.mkdir()
    (consumer / "pyproject.toml").write_text(
        '[project]\nname = "consumer"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        "dependencies = []\n\n[tool.poetry]\npackage-mode = false\n"
    )
    # What a publisher has configured already: the repository, named ministry.
    env = poetry_env(tmp_path / "home", POETRY_REPOSITORIES_MINISTRY_URL=token.url("/legacy/"))
    steps = [
        # The source gets the same name, so the credentials cover file downloads too.
        ("source", "add", "--priority=primary", "ministry", token.url("/simple/")),
        ("config", "http-basic.ministry", USER, PASSWORD),
        ("add", PROJECT),
    ]
    for step in steps:
        result = poetry(consumer, env, *step)
        assert result.returncode == 0, result.output
    assert f"Installing {PROJECT} ({token.version})" in result.output
    site = consumer / ".venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    module = site / "site-packages" / "pub_poetry" / "__init__.py"
    assert f'__version__ = "{token.version}"' in module.read_text()
    # The lock names the source, and no credentials.
    lock = (consumer / "poetry.lock").read_text()
    assert PASSWORD not in lock and PASSWORD not in (consumer / "pyproject.toml").read_text()
    assert 'reference = "ministry"' in lock
    # A CI job: a fresh checkout (no environment yet) installs what the lock names.
    shutil.rmtree(consumer / ".venv")
    result = poetry(consumer, env, "install")
    assert result.returncode == 0, result.output
    assert f"Installing {PROJECT} ({token.version})" in result.output
    assert f'__version__ = "{token.version}"' in module.read_text()

"""pdm publishes to a real daemon and installs back from it (issue 18, "Every client").

``pdm publish --no-build -r URL`` uploads what is in ``dist/`` in each of the
:data:`publisher_fixtures.MODES` (pdm wants a user even on an open index).
Then a consumer project whose only source is the private index, named
``pypi`` so that it replaces the default one, with its credentials written
as ``${VAR}`` and taken from the environment, adds the package.
"""

from __future__ import annotations

import subprocess
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

PROJECT = "pub-pdm"


def pdm_env(home: Path, python: Path, **extra: str) -> dict[str, str]:
    """A loopback-only environment for pdm, working with the interpreter ``python``."""
    env = client_env(home, {"PDM_PYTHON": str(python), "PDM_IGNORE_ACTIVE_VENV": "1", **extra})
    env.pop("VIRTUAL_ENV", None)
    return env


def pdm(project: Path, env: dict[str, str], command: str, *args: str):
    return run([tool("pdm"), command, "--project", str(project), *args], env)


def new_venv(where: Path) -> Path:
    """A virtualenv without pip, from the base interpreter: pdm installs there, nowhere else."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    return where / "bin" / "python"


@pytest.mark.parametrize("mode", MODES)
def test_pdm_publish(publish_targets: dict[str, Target], mode: str, tmp_path: Path) -> None:
    target = publish_targets[mode]
    project = tmp_path / "project"
    files = write_dists(project / "dist", PROJECT, target.version)
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "{PROJECT}"\nversion = "{target.version}"\n'
    )
    # Publishing installs nothing: the test's interpreter will do, and no venv is made.
    env = pdm_env(tmp_path / "home", Path(sys.executable))
    command = ["publish", "--no-build", "-r", target.url("/legacy/")]
    if mode == "token":  # from the environment, as in CI
        env.update(PDM_PUBLISH_USERNAME=target.username, PDM_PUBLISH_PASSWORD=target.password)
    else:
        command += ["-u", target.username or "anyone", "-P", target.password or "anything"]
    result = pdm(project, env, *command)
    assert result.returncode == 0, result.output
    assert_landed(target, PROJECT, files)


def test_pdm_adds_from_the_private_index_with_credentials_from_the_environment(
    publish_targets: dict[str, Target], tmp_path: Path
) -> None:
    target = publish_targets["password"]
    # Put 1.0 there with pdm (independent of the order the publish tests ran in).
    project = tmp_path / "project"
    write_dists(project / "dist", PROJECT, target.version)
    (project / "pyproject.toml").write_text(f'[project]\nname = "{PROJECT}"\nversion = "1.0"\n')
    publisher = pdm_env(tmp_path / "publisher", Path(sys.executable))
    upload = ["publish", "--no-build", "-r", target.url("/legacy/"), "-u", USER, "-P", PASSWORD]
    published = pdm(project, publisher, *upload)
    assert published.returncode == 0, published.output

    consumer = tmp_path / "consumer"
    consumer.mkdir()
    (consumer / "pyproject.toml").write_text(
        '[project]\nname = "consumer"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        "dependencies = []\n\n[tool.pdm]\ndistribution = false\n\n"
        '[[tool.pdm.source]]\nname = "pypi"\n'
        f'url = "http://${{MINISTRY_USER}}:${{MINISTRY_PASSWORD}}@127.0.0.1:{target.index.port}/simple/"\n'
    )
    python = new_venv(consumer / ".venv")
    env = pdm_env(tmp_path / "home", python, MINISTRY_USER=USER, MINISTRY_PASSWORD=PASSWORD)
    result = pdm(consumer, env, "add", f"{PROJECT}==1.0")
    assert result.returncode == 0, result.output
    site = consumer / ".venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    module = site / "site-packages" / "pub_pdm" / "__init__.py"
    assert '__version__ = "1.0"' in module.read_text()
    for written in ("pyproject.toml", "pdm.lock"):
        assert PASSWORD not in (consumer / written).read_text(), written

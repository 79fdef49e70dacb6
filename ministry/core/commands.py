"""The commands and configuration the pages print, filled in with this server's URL.

People paste these into a shell, so every argument that comes from outside
(the server URL can come from a ``Host`` header, a version from a proxied
file) is shell-quoted: a copied command can do nothing but what it says.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

#: The name the commands give this index in tools' configuration.
INDEX_NAME = "ministry"


@dataclass(frozen=True)
class Snippet:
    """Text people copy (a command, a configuration file); ``key`` makes its element id."""

    key: str
    label: str
    text: str


def install_commands(server: str, project: str, version: str | None = None) -> list[Snippet]:
    """pip and uv commands installing ``project`` (pinned to ``version``) from here."""
    index = shlex.quote(f"{server}/simple/")
    requirement = shlex.quote(project if version is None else f"{project}=={version}")
    named = shlex.quote(f"{INDEX_NAME}={server}/simple/")
    return [
        Snippet("pip", "pip", f"pip install --index-url {index} {requirement}"),
        Snippet("uv-pip", "uv pip", f"uv pip install --index-url {index} {requirement}"),
        Snippet("uv-add", "uv add (in a project)", f"uv add --index {named} {requirement}"),
    ]


#: What the commands print where a user's own credentials go.
USERNAME, PASSWORD, TOKEN = "USERNAME", "PASSWORD", "ministry-TOKEN"


def upload_commands(server: str) -> list[Snippet]:
    """How each publishing client is pointed at this server, and installs back from it.

    The clients insist on credentials even where the index takes uploads
    from anyone, hence the placeholders; a token goes with the user name
    ``__token__``. Poetry's install snippet names its source like its
    publishing repository, so that one ``http-basic`` entry covers the file
    downloads too (see the README's "Upload" section for why).
    """
    root = shlex.quote(server + "/")
    legacy = shlex.quote(f"{server}/legacy/")
    simple = shlex.quote(f"{server}/simple/")
    return [
        Snippet("twine", "twine", f"twine upload --repository-url {root} dist/*"),
        Snippet("twine-named", "twine, with ~/.pypirc", f"twine upload -r {INDEX_NAME} dist/*"),
        Snippet(
            "twine-token",
            "twine, with a token",
            f"twine upload --repository-url {root} -u __token__ -p {TOKEN} dist/*",
        ),
        Snippet(
            "uv",
            "uv",
            f"uv publish --publish-url {legacy} -u {USERNAME} -p {PASSWORD} dist/*",
        ),
        Snippet(
            "poetry",
            "poetry",
            f"poetry config repositories.{INDEX_NAME} {legacy}\n"
            f"poetry config http-basic.{INDEX_NAME} {USERNAME} {PASSWORD}\n"
            f"poetry publish --build -r {INDEX_NAME}",
        ),
        Snippet(
            "poetry-install",
            "poetry, installing from here",
            f"poetry source add --priority=primary {INDEX_NAME} {simple}\npoetry add PROJECT",
        ),
        Snippet(
            "pdm",
            "pdm",
            f"pdm publish --repository {legacy} -u {USERNAME} -P {PASSWORD}",
        ),
        Snippet(
            "pdm-source",
            "pyproject.toml, for pdm to install from here",
            f'[[tool.pdm.source]]\nname = "pypi"\nurl = "{server}/simple/"\n',
        ),
        Snippet(
            "pdm-install",
            "pdm, installing from here",
            f"PDM_PYPI_USERNAME={USERNAME} PDM_PYPI_PASSWORD={PASSWORD} pdm add PROJECT",
        ),
        Snippet(
            "hatch",
            "hatch",
            f"hatch publish -r {legacy} -u {USERNAME} -a {PASSWORD}",
        ),
        Snippet("flit", "flit, with ~/.pypirc", f"flit publish --repository {INDEX_NAME}"),
        Snippet(
            "flit-env",
            "flit, from the environment",
            f"FLIT_INDEX_URL={legacy} FLIT_USERNAME={USERNAME} FLIT_PASSWORD={PASSWORD} "
            "flit publish",
        ),
    ]


def pypirc(server: str) -> Snippet:
    """A ``~/.pypirc`` naming this server: ``twine upload -r`` and ``flit publish --repository``."""
    return Snippet(
        "pypirc",
        "~/.pypirc",
        "[distutils]\n"
        f"index-servers =\n    {INDEX_NAME}\n\n"
        f"[{INDEX_NAME}]\n"
        f"repository = {server}/\n"
        f"username = {USERNAME}\n"
        f"password = {PASSWORD}\n",
    )


def pip_conf(server: str) -> Snippet:
    """A ``pip.conf`` making this server the index for every ``pip install``."""
    return Snippet("pip-conf", "pip.conf", f"[global]\nindex-url = {server}/simple/\n")

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


def upload_commands(server: str) -> list[Snippet]:
    """How each upload client is pointed at this server.

    Anyone who can reach the server may upload until users exist, but the
    clients insist on credentials, hence the placeholder ones.
    """
    legacy = shlex.quote(f"{server}/legacy/")
    return [
        Snippet(
            "twine",
            "twine",
            f"twine upload --repository-url {shlex.quote(server + '/')} dist/*",
        ),
        Snippet("twine-named", "twine, with ~/.pypirc", f"twine upload -r {INDEX_NAME} dist/*"),
        Snippet("uv", "uv", f"uv publish --publish-url {legacy} -u anything -p anything dist/*"),
        Snippet(
            "poetry",
            "poetry",
            f"poetry config repositories.{INDEX_NAME} {legacy}\n"
            f"poetry publish --build -r {INDEX_NAME} -u anything -p anything",
        ),
        Snippet("pdm", "pdm", f"pdm publish --repository {legacy} -u anything -p anything"),
    ]


def pypirc(server: str) -> Snippet:
    """A ``~/.pypirc`` naming this server, for ``twine upload -r ministry``."""
    return Snippet(
        "pypirc",
        "~/.pypirc",
        "[distutils]\n"
        f"index-servers =\n    {INDEX_NAME}\n\n"
        f"[{INDEX_NAME}]\n"
        f"repository = {server}/\n"
        "username = anything\n"
        "password = anything\n",
    )


def pip_conf(server: str) -> Snippet:
    """A ``pip.conf`` making this server the index for every ``pip install``."""
    return Snippet("pip-conf", "pip.conf", f"[global]\nindex-url = {server}/simple/\n")

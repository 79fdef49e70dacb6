"""The pure core stays pure: no module under ministry/core/ imports I/O machinery.

Checked by reading the source with ``ast`` rather than importing it, so that a
forbidden import inside a function, or behind a condition, is caught as well.
"""

import ast
from pathlib import Path

import pytest

import ministry.core

CORE = Path(ministry.core.__file__).parent
FORBIDDEN = ("twisted", "klein", "treq", "txredisapi", "socket", "urllib.request", "http.client")
MODULES = sorted(CORE.rglob("*.py"))


def imported_names(source: str) -> set[str]:
    """Every dotted module name a source file imports, with each of its parents.

    ``from urllib import request`` yields ``urllib.request`` (and ``urllib``),
    since ``request`` may be a submodule.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {
        ".".join(name.split(".")[: i + 1]) for name in names for i in range(name.count(".") + 1)
    }


def forbidden_in(source: str) -> set[str]:
    return imported_names(source) & set(FORBIDDEN)


def test_the_core_has_modules():
    assert CORE / "models.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(CORE)))
def test_core_module_imports_nothing_forbidden(path):
    assert forbidden_in(path.read_text(encoding="utf-8")) == set()


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import twisted", {"twisted"}),
        ("from twisted.internet import reactor", {"twisted"}),
        ("import twisted.web.server as server", {"twisted"}),
        ("import klein, json", {"klein"}),
        ("import treq", {"treq"}),
        ("from txredisapi import lazyConnectionPool", {"txredisapi"}),
        ("import socket", {"socket"}),
        ("from socket import create_connection", {"socket"}),
        ("import urllib.request", {"urllib.request"}),
        ("from urllib import request", {"urllib.request"}),
        ("from urllib.request import urlopen", {"urllib.request"}),
        ("from http import client", {"http.client"}),
        ("import http.client", {"http.client"}),
        ("def f():\n    import twisted\n", {"twisted"}),
        ("try:\n    import treq\nexcept ImportError:\n    pass\n", {"treq"}),
        ("import urllib.parse", set()),
        ("from urllib.parse import quote", set()),
        ("from http import HTTPStatus", set()),
        ("import socketserver", set()),
        ("import twistedish", set()),
        ("from . import socket", set()),
        ("from .models import FileRecord", set()),
    ],
)
def test_checker_sees_forbidden_imports(source, found):
    """The check itself is tested, so a green run above means something."""
    assert forbidden_in(source) == found

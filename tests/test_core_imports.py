"""The pure core stays pure: no module under ministry/core/ imports I/O machinery,
zope.interface, or any part of the package built on the core.

Checked by reading the source with ``ast`` rather than importing it, so that a
forbidden import inside a function, or behind a condition, is caught as well;
relative imports are resolved, so ``from ..web import app`` is caught too.
"""

from pathlib import Path

import pytest
from source_imports import imported_names

import ministry.core

CORE = Path(ministry.core.__file__).parent
#: I/O machinery, and every part of the package above the core (the layers of
#: ``test_layers``): the core is what all of them build on, so it uses none.
FORBIDDEN = (
    "twisted",
    "klein",
    "treq",
    "txredisapi",
    "zope",
    "socket",
    "urllib.request",
    "http.client",
    "ministry.web",
    "ministry.stores",
    "ministry.mirror",
    "ministry.upstream",
    "ministry.catalog",
)
MODULES = sorted(CORE.rglob("*.py"))


def package_of(path: Path) -> str:
    """``ministry.core`` for ``ministry/core/names.py``, ``ministry.core.x`` for ``x/...``."""
    return ".".join(("ministry", *path.parent.relative_to(CORE.parent).parts))


def forbidden_in(source: str, package: str = "ministry.core") -> set[str]:
    return imported_names(source, package) & set(FORBIDDEN)


def test_the_core_has_modules():
    assert CORE / "models.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(CORE)))
def test_core_module_imports_nothing_forbidden(path):
    assert forbidden_in(path.read_text(encoding="utf-8"), package_of(path)) == set()


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
        ("import zope.interface", {"zope"}),
        ("from zope.interface import implementer", {"zope"}),
        ("from ministry.web.app import build_site", {"ministry.web"}),
        ("import ministry.web", {"ministry.web"}),
        ("from ministry import web", {"ministry.web"}),
        ("from ministry.stores.sqlite import SQLiteStore", {"ministry.stores"}),
        ("from ministry.mirror import MirrorService", {"ministry.mirror"}),
        ("from ministry import mirror", {"ministry.mirror"}),
        ("from ministry.upstream.client import UpstreamClient", {"ministry.upstream"}),
        ("from ministry.catalog.views import Catalog", {"ministry.catalog"}),
        ("from ..web import app", {"ministry.web"}),
        ("from ..stores.sqlite import SQLiteStore", {"ministry.stores"}),
        ("from .. import catalog", {"ministry.catalog"}),
        ("from ministry.core.mirror_plan import plan", set()),
        ("from ministry.core.upstream_pages import parse_page", set()),
        ("from ministry import __version__", set()),
        ("import ministry.config", set()),
        ("from ministry.webhooks import x", set()),
    ],
)
def test_checker_sees_forbidden_imports(source, found):
    """The check itself is tested, so a green run above means something."""
    assert forbidden_in(source) == found

"""What a Python source file imports, read with ``ast`` rather than by importing it.

Reading the source finds every import: inside a function, behind a
condition, under ``TYPE_CHECKING``. The import rules of the package
(``test_core_imports``: the core stays pure; ``test_layers``: imports only
point down) are both checked on what :func:`imported` returns.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class Imported:
    """A dotted name an import statement may bind, and the line of the statement.

    ``from a.b import c`` gives ``a.b.c``: ``c`` may be a submodule or a name
    defined in ``a.b``, which only the package's own modules can tell.
    """

    name: str
    line: int


def imported(source: str, package: str | None = None) -> list[Imported]:
    """Every dotted name ``source`` imports, in order.

    ``package`` is the package the file belongs to (``ministry.core`` for
    ``ministry/core/names.py`` and for ``ministry/core/__init__.py``); with
    it, relative imports are resolved to absolute names. Without it, they
    are left out, as they cannot name anything outside the file's package.
    """
    found: list[Imported] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(Imported(alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base is None:
                continue
            found.extend(Imported(f"{base}.{alias.name}", node.lineno) for alias in node.names)
    return sorted(found, key=lambda entry: entry.line)


def imported_names(source: str, package: str | None = None) -> set[str]:
    """Every dotted name ``source`` imports, with each of its parents.

    ``from urllib import request`` yields ``urllib.request`` (and ``urllib``),
    since ``request`` may be a submodule.
    """
    return {
        ".".join(parts[: depth + 1])
        for entry in imported(source, package)
        for parts in [entry.name.split(".")]
        for depth in range(len(parts))
    }


def _absolute(node: ast.ImportFrom, package: str | None) -> str | None:
    """The module a ``from ... import`` statement reads from, as an absolute name."""
    if node.level == 0:
        return node.module
    if package is None:
        return None
    parts = package.split(".")
    if node.level > len(parts):
        return None  # above the top-level package: Python refuses it too
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base

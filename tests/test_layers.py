"""The package's shape: imports point down the layers, never in a circle, modules stay small.

DESIGN.md's rule is that imports only point down, from the daemon's wiring
to the pure core, so each part can be read, tested and replaced knowing only
what is below it. Every module of ``ministry`` is read with ``ast`` (nothing
is imported, see ``source_imports``), every import of another ``ministry``
module becomes an edge, wherever it is written (in a function, under
``TYPE_CHECKING``: a type-only import still makes a module depend on the
one it names), and three rules are checked:

1. there is no import cycle between modules;
2. a module imports only from its own layer and the layers below it
   (:data:`LAYERS`, top to bottom); siblings in a layer may import each
   other, as long as rule 1 holds;
3. every module is under :data:`LINE_LIMIT` lines, so that it can keep one
   job a newcomer can guess from its name.

A module in no layer fails too: a new package is placed on purpose.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from source_imports import imported

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "ministry"
ROOT = "ministry"

#: Top to bottom. A module belongs to the layer of the longest name it falls
#: under (``ministry.web.http.form`` is in ``ministry.web.http``, not in
#: ``ministry.web``). ``ministry`` itself (``__init__.py``, for ``__version__``)
#: is the bottom layer: anyone may import it, and it imports nothing.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "ministry.tap",
        "ministry.admin",
        "ministry.backends",
        "ministry.lifecycle",
        "ministry.startup_checks",
    ),
    ("ministry.web", "ministry.mirror"),  # ministry.web: the Klein components
    ("ministry.web.http",),
    ("ministry.catalog",),
    ("ministry.upstream",),
    ("ministry.curation", "ministry.integrity"),
    ("ministry.stores",),
    ("ministry.interfaces", "ministry.config"),
    ("ministry.core",),
    (ROOT,),
)

LINE_LIMIT = 400

#: An import graph: module -> {imported module: line of the first such import}.
Graph = dict[str, dict[str, int]]


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    """``ministry.web.app`` for ``ministry/web/app.py``, ``ministry.web`` for its ``__init__``."""
    parts = path.relative_to(package_dir.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def find_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    return {module_name(path, package_dir): path for path in sorted(package_dir.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of the layer ``module`` belongs to, or None."""
    best: tuple[int, int] | None = None  # (length of the matching name, layer)
    for index, layer in enumerate(LAYERS):
        for name in layer:
            under = module == name or (name != ROOT and module.startswith(name + "."))
            if under and (best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]


def describe(index: int) -> str:
    return f"layer {index + 1} of {len(LAYERS)} ({', '.join(LAYERS[index])})"


def targets(source: str, module: str, is_package: bool, known: set[str]) -> dict[str, int]:
    """The modules of ``known`` that ``source`` (the text of ``module``) imports, by first line.

    A name resolves to the longest module it falls under: ``from
    ministry.core.models import FileRecord`` imports ``ministry.core.models``,
    ``from ministry.web import app`` imports ``ministry.web.app``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: dict[str, int] = {}
    for entry in imported(source, package or None):
        parts = entry.name.split(".")
        for depth in range(len(parts), 0, -1):
            candidate = ".".join(parts[:depth])
            if candidate in known:
                if candidate != module:
                    found.setdefault(candidate, entry.line)
                break
    return found


def import_graph(modules: dict[str, Path]) -> Graph:
    known = set(modules)
    return {
        module: targets(path.read_text(encoding="utf-8"), module, path.name == "__init__.py", known)
        for module, path in modules.items()
    }


def find_cycles(graph: Graph) -> list[list[str]]:
    """One shortest cycle through each strongly connected group of modules, sorted.

    Tarjan's algorithm finds the groups of modules that all reach each
    other; each group is reported by the shortest cycle from its first
    module, enough to say which import to remove or move.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, {})):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(_shortest_cycle(graph, group) for group in groups)


def _shortest_cycle(graph: Graph, group: set[str]) -> list[str]:
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph.get(node, {})):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if successor in group and successor not in came_from:
                    came_from[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")


def show_cycle(graph: Graph, cycle: list[str]) -> str:
    """``a (line 3) -> b (line 9) -> a``: each import with the line it is on."""
    steps = [f"{module} (line {graph[module][after]})" for module, after in pairwise(cycle)]
    return " -> ".join([*steps, cycle[-1]])


MODULES = find_modules()
GRAPH = import_graph(MODULES)


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE_DIR.parent))


# -- the rules -----------------------------------------------------------------


def test_the_package_has_modules():
    assert {"ministry", "ministry.core.models", "ministry.tap"} <= set(MODULES)


def test_no_import_cycles():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles between modules:\n" + "\n".join(
        show_cycle(GRAPH, cycle) for cycle in cycles
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_in_a_layer(module):
    assert layer_of(module) is not None, (
        f"{module} ({relative(MODULES[module])}) is in no layer: add it to LAYERS "
        "in tests/test_layers.py where it belongs"
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    own = layer_of(module)
    if own is None:
        pytest.skip(f"{module} is in no layer (see test_module_is_in_a_layer)")
    upward = [
        f"  {relative(MODULES[module])}:{line} imports {target}, in {describe(layer)}"
        for target, line in sorted(GRAPH[module].items(), key=lambda item: item[1])
        if (layer := layer_of(target)) is not None and layer < own
    ]
    assert not upward, (
        f"{module} is in {describe(own)} and may import only its own layer and those "
        "below it, but:\n" + "\n".join(upward)
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_under_the_line_limit(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines < LINE_LIMIT, (
        f"{relative(MODULES[module])} has {lines} lines; every module must be under "
        f"{LINE_LIMIT}: split it by job"
    )


# -- the checker itself ------------------------------------------------------------
# Tested, so that a green run above means something.


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        pytest.param("ministry.tap", 0, id="tap"),
        pytest.param("ministry.admin", 0, id="admin"),
        pytest.param("ministry.web", 1, id="the web package itself"),
        pytest.param("ministry.web.simple", 1, id="a web component"),
        pytest.param("ministry.mirror", 1, id="mirror"),
        pytest.param("ministry.web.http", 2, id="the transport package"),
        pytest.param("ministry.web.http.form", 2, id="the longest name wins"),
        pytest.param("ministry.catalog.views", 3, id="catalog"),
        pytest.param("ministry.upstream.client", 4, id="upstream"),
        pytest.param("ministry.integrity", 5, id="integrity"),
        pytest.param("ministry.stores.redis.store", 6, id="a store, however deep"),
        pytest.param("ministry.config", 7, id="config"),
        pytest.param("ministry.core.names", 8, id="core"),
        pytest.param("ministry", 9, id="the package's __init__"),
        pytest.param("ministry.webhooks", None, id="a name is not a prefix of another"),
        pytest.param("ministry.brand_new", None, id="the root layer is not a catch-all"),
    ],
)
def test_layer_of(module, layer):
    assert layer_of(module) == layer


KNOWN = {"ministry", "ministry.web", "ministry.web.app", "ministry.core", "ministry.core.models"}


@pytest.mark.parametrize(
    ("source", "module", "is_package", "expected"),
    [
        pytest.param(
            "from ministry.core.models import FileRecord",
            "ministry.web.app",
            False,
            {"ministry.core.models": 1},
            id="a name from a module",
        ),
        pytest.param(
            "from ministry.web import app",
            "ministry.tap",
            False,
            {"ministry.web.app": 1},
            id="a submodule from its package",
        ),
        pytest.param(
            "from ministry import __version__", "ministry.web", True, {"ministry": 1}, id="root"
        ),
        pytest.param(
            "import ministry.core.models",
            "ministry.web.app",
            False,
            {"ministry.core.models": 1},
            id="import a.b.c",
        ),
        pytest.param(
            "from . import app", "ministry.web.x", False, {"ministry.web.app": 1}, id="relative"
        ),
        pytest.param(
            "from ..core import models",
            "ministry.web.x",
            False,
            {"ministry.core.models": 1},
            id="relative, two levels",
        ),
        pytest.param(
            "from . import app", "ministry.web", True, {"ministry.web.app": 1}, id="from __init__"
        ),
        pytest.param(
            "import json\nimport twisted.web\n", "ministry.web.app", False, {}, id="not ours"
        ),
        pytest.param(
            "from ministry.web.app import build_site", "ministry.web.app", False, {}, id="itself"
        ),
        pytest.param(
            "def f():\n    from ministry.web import app\n",
            "ministry.core.models",
            False,
            {"ministry.web.app": 2},
            id="inside a function",
        ),
        pytest.param(
            "import typing\nif typing.TYPE_CHECKING:\n    from ministry.web import app\n",
            "ministry.core.models",
            False,
            {"ministry.web.app": 3},
            id="under TYPE_CHECKING",
        ),
    ],
)
def test_targets(source, module, is_package, expected):
    assert targets(source, module, is_package, KNOWN) == expected


@pytest.mark.parametrize(
    ("graph", "cycles"),
    [
        pytest.param({"a": {"b": 1}, "b": {"c": 1}, "c": {}}, [], id="a chain"),
        pytest.param({"a": {"b": 1, "c": 1}, "b": {"c": 1}, "c": {}}, [], id="a diamond"),
        pytest.param({"a": {"b": 1}, "b": {"a": 1}}, [["a", "b", "a"]], id="two modules"),
        pytest.param(
            {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}, [["a", "b", "c", "a"]], id="three"
        ),
        pytest.param(
            {"a": {"b": 1}, "b": {"a": 1, "c": 1}, "c": {"d": 1}, "d": {"c": 1}},
            [["a", "b", "a"], ["c", "d", "c"]],
            id="two separate cycles",
        ),
        pytest.param(
            {"a": {"b": 1}, "b": {"c": 1}, "c": {"d": 1, "a": 1}, "d": {"a": 1}},
            [["a", "b", "c", "a"]],
            id="the shortest way round",
        ),
    ],
)
def test_find_cycles(graph, cycles):
    assert find_cycles(graph) == cycles


def test_show_cycle_names_each_import_line():
    graph = {"a": {"b": 3}, "b": {"a": 9}}
    assert show_cycle(graph, ["a", "b", "a"]) == "a (line 3) -> b (line 9) -> a"


def test_module_name(tmp_path):
    package = tmp_path / "ministry"
    assert module_name(package / "__init__.py", package) == "ministry"
    assert module_name(package / "web" / "__init__.py", package) == "ministry.web"
    assert module_name(package / "web" / "http" / "form.py", package) == "ministry.web.http.form"

"""Mirror planning: the [mirror] table, file selection and the dependency closure, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from packaging.requirements import Requirement

from ministry.core.mirror_config import (
    MirrorConfig,
    MirrorConfigError,
    parse_mirror_table,
)
from ministry.core.mirror_plan import dependencies, select
from ministry.core.mirror_targets import Need, Target
from ministry.core.models import SDIST, WHEEL, FileRecord

LINUX = Target("3.11", "manylinux_2_28_x86_64")
WIN = Target("3.12", "win_amd64")
MAC = Target("3.12", "macosx_11_0_arm64")
BOTH = frozenset({LINUX, WIN})


def no_files(path: str) -> str:
    raise FileNotFoundError(path)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "mirror.projects: nothing to mirror"),
        ({"projects": ["x"], "latest": 0}, "mirror.latest: expected a positive integer"),
        ({"projects": ["x"], "latest": True}, "mirror.latest: expected a positive integer"),
        ({"projects": ["x"], "every": "soon"}, "mirror.every: expected a duration"),
        ({"projects": ["x"], "every": 0}, "mirror.every: must be at least one second"),
        ({"projects": "x"}, "mirror.projects: expected a list of strings"),
        ({"projects": ["x >= "]}, "mirror.projects:"),
        ({"projects": ["x @ https://e.test/x.whl"]}, "mirror.projects: 'x @ "),
        ({"projects": ["x"], "python": ["2.7"]}, "mirror.python: expected versions such as"),
        ({"projects": ["x"], "python": []}, "mirror.python: expected a list of strings"),
        ({"projects": ["x"], "platforms": ["linux"]}, "mirror.platforms: unknown platform"),
        ({"projects": ["x"], "sdists": "yes"}, "mirror.sdists: expected true or false"),
        ({"projects": ["x"], "dependencies": 1}, "mirror.dependencies: expected true or false"),
        (
            {"projects": ["x"], "build_requirements": "yes"},
            "mirror.build_requirements: expected true or false",
        ),
        ({"projects": ["x"], "prereleases": "no"}, "mirror.prereleases: expected true or false"),
        ({"projects": ["x"], "lastest": 3}, "mirror.lastest: unknown key"),
        ({"requirements": ["missing.txt"]}, "mirror.requirements: cannot read missing.txt"),
    ],
)
def test_a_bad_table_names_the_key(table, message):
    with pytest.raises(MirrorConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_mirror_table(table, no_files)


def test_a_good_table_with_requirements_files():
    files = {
        "reqs.txt": "# pinned\nrequests>=2.30  # http\n-r more.txt\n\n"
        "numpy ; python_version >= '3.12'\n",
        "more.txt": "--index-url https://upstream.example/simple/\n",
    }
    config = parse_mirror_table(
        {"projects": ["attrs"], "requirements": ["reqs.txt"], "every": "30m", "latest": 1},
        files.__getitem__,
    )
    assert [str(r) for r in config.requirements] == [
        "attrs",
        "requests>=2.30",
        'numpy; python_version >= "3.12"',
    ]
    assert config.every == 1800 and config.latest == 1 and config.sdists and config.dependencies
    assert len(config.targets) == 4
    # numpy's marker leaves it to the 3.12 targets only.
    roots = {need.project: need.targets for need in config.roots()}
    assert {target.python for target in roots["numpy"]} == {"3.12"}
    assert len(roots["attrs"]) == 4


def record(filename: str, version: str, yanked: str | None = None, requires_python=None):
    return FileRecord(
        project="demo",
        filename=filename,
        version=version,
        packagetype=SDIST if filename.endswith(".tar.gz") else WHEEL,
        size=1,
        sha256="0" * 64,
        blake2b_256="",
        md5="",
        upload_time=datetime(2024, 1, 1, tzinfo=UTC),
        requires_python=requires_python,
        yanked=yanked,
        origin="proxy",
    )


FILES = [
    record("demo-1.0.tar.gz", "1.0"),
    record("demo-1.0-py3-none-any.whl", "1.0"),
    record("demo-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "2.0"),
    record("demo-2.0-cp312-cp312-win_amd64.whl", "2.0"),
    record("demo-2.0-cp312-cp312-macosx_11_0_arm64.whl", "2.0"),
    record("demo-2.0-cp311-cp311-manylinux_2_34_x86_64.whl", "2.0"),
    record("demo-2.0-cp38-abi3-manylinux_2_17_x86_64.whl", "2.0"),
    record("demo-2.0-cp311-cp311-win_amd64.whl", "2.0"),
    record("demo-2.0.tar.gz", "2.0"),
    record("demo-3.0rc1-py3-none-any.whl", "3.0rc1"),
    record("demo-2.5-py3-none-any.whl", "2.5", yanked="broken"),
    record("demo-2.6-py3-none-any.whl", "2.6", requires_python=">=3.13"),
]


@pytest.mark.parametrize(
    ("requirement", "targets", "options", "expected"),
    [
        pytest.param(
            "demo",
            BOTH,
            {"latest": 1},
            {
                "demo-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "demo-2.0-cp312-cp312-win_amd64.whl",
                "demo-2.0-cp38-abi3-manylinux_2_17_x86_64.whl",
                "demo-2.0.tar.gz",
            },
            id="newest; tags per target; abi3; sdist; no too-new glibc, mac, yanked, 3.13-only",
        ),
        pytest.param(
            "demo",
            frozenset({LINUX}),
            {"latest": 1, "sdists": False},
            {
                "demo-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "demo-2.0-cp38-abi3-manylinux_2_17_x86_64.whl",
            },
            id="no sdists, one target",
        ),
        pytest.param(
            "demo<2",
            BOTH,
            {},
            {"demo-1.0.tar.gz", "demo-1.0-py3-none-any.whl"},
            id="specifier",
        ),
        pytest.param(
            "demo",
            frozenset({MAC}),
            {"latest": 1, "prereleases": True},
            {"demo-3.0rc1-py3-none-any.whl"},
            id="prereleases allowed",
        ),
        pytest.param(
            "demo>=3.0rc1",
            BOTH,
            {},
            {"demo-3.0rc1-py3-none-any.whl"},
            id="a prerelease the specifier names",
        ),
        pytest.param("demo==2.5", BOTH, {}, {"demo-2.5-py3-none-any.whl"}, id="yanked, pinned"),
        pytest.param(
            "demo",
            frozenset({MAC}),
            {"latest": 5, "sdists": False},
            {"demo-1.0-py3-none-any.whl", "demo-2.0-cp312-cp312-macosx_11_0_arm64.whl"},
            id="versions without a wanted file do not count",
        ),
    ],
)
def test_selection(requirement, targets, options, expected):
    config = MirrorConfig(**options)
    releases = select(FILES, Need(Requirement(requirement), targets), config)
    assert {r.filename for release in releases for r in release.files} == expected


METADATA = b"""Metadata-Version: 2.1
Name: demo
Version: 2.0
Requires-Dist: base>=1
Requires-Dist: winonly ; sys_platform == "win32"
Requires-Dist: linuxonly ; platform_system == "Linux" and platform_machine == "x86_64"
Requires-Dist: new ; python_version >= "3.12"
Requires-Dist: speedy[c] ; extra == "fast"
Requires-Dist: docs ; extra == "docs"
Requires-Dist: never ; python_version < "3"
Requires-Dist: not a requirement!!

"""


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        pytest.param(
            "demo",
            {"base>=1": BOTH, "winonly": {WIN}, "linuxonly": {LINUX}, "new": {WIN}},
            id="markers per target",
        ),
        pytest.param(
            "demo[fast]",
            {
                "base>=1": BOTH,
                "winonly": {WIN},
                "linuxonly": {LINUX},
                "new": {WIN},
                "speedy[c]": BOTH,
            },
            id="the extras asked for",
        ),
    ],
)
def test_dependencies_per_target(requirement, expected):
    found = dependencies(METADATA, Need(Requirement(requirement), BOTH))
    assert {str(need.requirement): set(need.targets) for need in found} == {
        key: set(value) for key, value in expected.items()
    }


def test_a_dependency_is_needed_only_where_its_parent_is():
    found = dependencies(METADATA, Need(Requirement("demo"), frozenset({LINUX})))
    assert {str(need.requirement) for need in found} == {"base>=1", "linuxonly"}

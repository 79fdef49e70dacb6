"""Build requirements read from sdists, and which targets would build a release."""

from __future__ import annotations

import io

import pytest
from archive_factory import make_sdist, make_tar_gz, tar_entry
from packaging.version import Version
from test_core_mirror_plan import record as mirror_plan_record

from ministry.core.build_requires import (
    LEGACY_REQUIRES,
    build_needs,
    building_targets,
    read_build_requires,
)
from ministry.core.errors import BadRequest
from ministry.core.mirror_plan import Release
from ministry.core.mirror_targets import Target
from ministry.core.models import FileRecord

LINUX = Target("3.12", "manylinux_2_28_x86_64")
WIN = Target("3.12", "win_amd64")
BOTH = frozenset({LINUX, WIN})


def sdist(pyproject: str | None, fmt: str = "tar.gz") -> bytes:
    extra = {"demo-1.0/pyproject.toml": pyproject.encode()} if pyproject is not None else None
    return make_sdist("demo", "1.0", fmt=fmt, omit=["pyproject.toml"], extra_members=extra)


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        (
            '[build-system]\nrequires = ["flit_core>=3.2,<4", "cffi; sys_platform == \'win32\'"]\n'
            'build-backend = "flit_core.buildapi"\n',
            ["flit_core>=3.2,<4", "cffi; sys_platform == 'win32'"],
        ),
        ('[build-system]\nrequires = []\nbackend-path = ["."]\n', []),
        ('[project]\nname = "demo"\n', list(LEGACY_REQUIRES)),  # no [build-system]
        (None, list(LEGACY_REQUIRES)),  # no pyproject.toml: setup.py, the legacy backend
    ],
)
def test_build_requires_from_the_stored_archive(pyproject, expected, fmt):
    data = sdist(pyproject, fmt)
    assert read_build_requires(io.BytesIO(data), f"demo-1.0.{fmt}") == expected


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (sdist("[build-system\n"), BadRequest, "pyproject.toml is not valid TOML"),
        (sdist('[build-system]\nrequires = "setuptools"\n'), BadRequest, "not a list of strings"),
        (b"not an archive", BadRequest, "not a readable sdist"),
        (
            make_tar_gz([(tar_entry("demo-1.0/pyproject.toml", size=2 * 1024**2), None)]),
            BadRequest,
            "pyproject.toml is larger than 1048576 bytes",
        ),
    ],
)
def test_a_bad_sdist_is_a_clear_error(data, error, message):
    with pytest.raises(error, match=message):
        read_build_requires(io.BytesIO(data), "demo-1.0.tar.gz")


def test_build_needs_follow_markers_per_target():
    needs, bad = build_needs(
        ["flit_core>=3.2", "cffi; sys_platform == 'win32'", "not valid!!", "x @ https://e.test/x"],
        BOTH,
    )
    assert {str(need.requirement): need.targets for need in needs} == {
        "flit_core>=3.2": BOTH,
        "cffi": frozenset({WIN}),
    }
    assert bad == ["not valid!!", "x @ https://e.test/x"]


def record(filename: str) -> FileRecord:
    return mirror_plan_record(filename, "1.0")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["demo-1.0.tar.gz"], BOTH),  # sdist only: every target builds it
        (["demo-1.0.tar.gz", "demo-1.0-cp312-cp312-win_amd64.whl"], {LINUX}),
        (["demo-1.0.tar.gz", "demo-1.0-py3-none-any.whl"], set()),  # nobody builds
        (["demo-1.0-cp312-cp312-win_amd64.whl"], set()),  # no sdist to build
    ],
)
def test_only_targets_without_a_wheel_build_the_sdist(files, expected):
    release = Release(Version("1.0"), tuple(record(name) for name in files))
    assert building_targets(release, BOTH) == frozenset(expected)

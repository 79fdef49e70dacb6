"""The mirror reads what teams have: locked requirements files, pylock.toml, sdists' backends.

A loopback upstream (a second ``twistd ministry``) holds an sdist-only
project built by a backend that exists only on that upstream, the backend
(a wheel with a dependency of its own), and projects named by a
``pip-compile --generate-hashes``-style file (hashes, continuations,
options lines) that includes (``-r``) a real ``uv export`` of a project
locked against that upstream, and by a real ``uv export --format
pylock.toml``. The mirror must fetch exactly those files, and then pip and
uv must build the sdist through the mirror with the upstream stopped:
their build isolation installs the backend from the mirror alone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from archive_factory import make_sdist, make_wheel, sdist_filename, wheel_filename
from http_harness import post_file
from servers import MinistryProcess, client_env
from test_mirror import cached, fetched, wait_idle
from test_proxy import assert_installs

pytestmark = pytest.mark.e2e

LINUX = "manylinux_2_28_x86_64"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"

#: A PEP 517 backend in a few lines: it packs the sdist's module into a pure wheel.
BACKEND = textwrap.dedent(
    '''\
    """A tiny build backend that only the loopback upstream serves."""
    import base64, hashlib, os, zipfile

    import mir_helper  # the backend's own dependency, in the build environment too


    def _record(path, data):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"{path},sha256={digest},{len(data)}\\n"


    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        with open("PKG-INFO", encoding="utf-8") as handle:
            metadata = handle.read()
        fields = dict(line.split(": ", 1) for line in metadata.splitlines() if ": " in line)
        dist, version = fields["Name"].replace("-", "_"), fields["Version"]
        info = f"{dist}-{version}.dist-info"
        files = {
            f"{dist}/__init__.py": f"BUILT_BY = {mir_helper.NAME!r}\\n".encode(),
            f"{info}/METADATA": metadata.encode(),
            f"{info}/WHEEL": b"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
        }
        record = "".join(_record(path, data) for path, data in files.items())
        files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\\n").encode()
        filename = f"{dist}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
            for path, data in files.items():
                archive.writestr(path, data)
        return filename
    '''
)
BUILT_PYPROJECT = (
    '[build-system]\nrequires = ["mir-backend>=1.0"]\nbuild-backend = "mir_backend"\n'
    '\n[project]\nname = "mir-built"\nversion = "1.0"\n'
)


def distributions() -> dict[str, tuple[str, str, bytes]]:
    """filename -> (name, version, bytes) of everything the upstream holds."""
    wheels = {
        ("mir-backend", "1.0"): make_wheel(
            "mir-backend",
            "1.0",
            requires_dist=["mir-helper"],
            extra_members={"mir_backend/__init__.py": BACKEND.encode()},
        ),
        ("mir-helper", "1.0"): make_wheel(
            "mir-helper", "1.0", extra_members={"mir_helper/__init__.py": b'NAME = "mir-helper"\n'}
        ),
    }
    for name, version in [("mir-pinned", "1.0"), ("mir-pinned", "2.0")]:
        wheels[name, version] = make_wheel(name, version)
    for name in ("mir-marked", "mir-locked", "mir-unlocked"):
        wheels[name, "1.0"] = make_wheel(name, "1.0")
    found = {wheel_filename(n, v): (n, v, data) for (n, v), data in wheels.items()}
    sdist = make_sdist(
        "mir-built",
        "1.0",
        omit=["pyproject.toml"],
        extra_members={"mir_built-1.0/pyproject.toml": BUILT_PYPROJECT.encode()},
    )
    found[sdist_filename("mir-built", "1.0")] = ("mir-built", "1.0", sdist)
    return found


FILES = distributions()
#: Exactly what the configuration below must fetch.
WANTED = {
    "mir_pinned-1.0-py3-none-any.whl",  # pinned by hash; 2.0 is newer but not asked for
    "mir_built-1.0.tar.gz",  # sdist only: it is built, so its backend is needed
    "mir_backend-1.0-py3-none-any.whl",  # the build requirement
    "mir_helper-1.0-py3-none-any.whl",  # the build requirement's dependency
    "mir_locked-1.0-py3-none-any.whl",  # from pylock.toml
}
#: The projects locked with uv: (directory, dependencies, export format, exported file).
LOCKED = [
    ("app", ["mir-built", "mir-marked; sys_platform == 'win32'"], "requirements-txt", "req.txt"),
    ("tool", ["mir-locked"], "pylock.toml", "pylock.toml"),
]


def sha256(filename: str) -> str:
    return hashlib.sha256(FILES[filename][2]).hexdigest()


def requirements_txt() -> str:
    """What ``pip-compile --generate-hashes`` writes (and an options line it may carry)."""
    return textwrap.dedent(
        f"""\
        #
        # This file is autogenerated by pip-compile with Python {PY}
        #    pip-compile --generate-hashes requirements.in
        #
        --index-url https://upstream.example/simple/

        mir-pinned==1.0 \\
            --hash=sha256:{sha256("mir_pinned-1.0-py3-none-any.whl")} \\
            --hash=sha256:{"0" * 64}
            # via -r requirements.in
        -r app/req.txt
        """
    )


def uv_export(where: Path, upstream: MinistryProcess) -> Path:
    """Lock each of :data:`LOCKED` with uv against the upstream and export it; the exports' root."""
    uv = [sys.executable, "-m", "uv"]
    env = client_env(where / "home")
    for directory, dependencies, fmt, output in LOCKED:
        project = where / "exports" / directory
        project.mkdir(parents=True)
        (project / "pyproject.toml").write_text(
            f'[project]\nname = "our-{directory}"\nversion = "0.1"\nrequires-python = ">={PY}"\n'
            f"dependencies = {json.dumps(dependencies)}\n"
        )
        for command in (
            ["lock", "--default-index", f"{upstream.url}/simple/", "--python", sys.executable],
            ["export", "--format", fmt, "--output-file", output],
        ):
            done = subprocess.run(
                [*uv, *command, "--no-cache"],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
    exported = (where / "exports" / "app" / "req.txt").read_text()
    assert "mir-built==1.0 \\\n    --hash=sha256:" in exported  # uv's own continuations
    return where / "exports"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    with MinistryProcess(tmp_path_factory.mktemp("upstream")) as process:
        for filename, (name, version, data) in FILES.items():
            post_file(process.url, name, version, filename, data)
        process.exports = uv_export(tmp_path_factory.mktemp("uv"), process)
        yield process


def mirroring(where: Path, upstream: MinistryProcess, requirements: str) -> MinistryProcess:
    shutil.copytree(upstream.exports, where, dirs_exist_ok=True)
    (where / "ministry.toml").write_text(
        f'[mirror]\nrequirements = ["requirements.txt", "tool/pylock.toml"]\n'
        f'python = ["{PY}"]\nplatforms = ["{LINUX}"]\nlatest = 2\n'
    )
    (where / "requirements.txt").write_text(requirements)
    return MinistryProcess(
        where,
        *("--config", str(where / "ministry.toml"), "--upstream", f"{upstream.url}/simple/"),
        *("--upstream-timeout", "5"),
    )


def test_locked_files_and_an_sdists_backend_are_mirrored_and_build_offline(tmp_path, upstream):
    mark = upstream.log_size()
    with mirroring(tmp_path / "mirror", upstream, requirements_txt()) as mirror:
        report = wait_idle(mirror)
        assert report["errors"] == [], report
        assert sorted(fetched(upstream, mark)) == sorted(WANTED)
        assert {name for name in cached(mirror) if not name.endswith(".metadata")} == WANTED
        assert "mir_built-1.0.tar.gz builds with mir-backend>=1.0" in mirror.log_text()

    # pip and uv build the sdist from the mirror alone: build isolation installs the
    # backend and its dependency from the index, which now has no upstream.
    upstream.stop()
    try:
        with MinistryProcess(tmp_path / "mirror", "--offline") as offline:
            for tool in ("pip", "uv"):
                assert assert_installs(tool, offline.url, tmp_path, "mir-built") == {
                    "mir_built-1.0"
                }
            log = offline.log_text()
            assert '"GET /packages/mir-backend/mir_backend-1.0-py3-none-any.whl' in log
    finally:
        upstream.start()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("mir-pinned==1.0\n--frobnicate\n", r"requirements\.txt:2: .*no such option: --frobnicate"),
        ("mir-pinned==1.0\nmir-built==\n", r"requirements\.txt:2: "),
        ("-r app/missing.txt\n", r"requirements\.txt:1: -r app/missing\.txt: cannot read"),
    ],
)
def test_a_bad_requirements_file_stops_start_up_and_nothing_is_mirrored(
    tmp_path, upstream, bad, message
):
    mark = upstream.log_size()
    process = mirroring(tmp_path / "mirror", upstream, bad)
    process.startup_timeout = 10
    with pytest.raises(RuntimeError, match=r"mirror\.requirements: " + message):
        process.start()
    assert upstream.log_since(mark) == ""  # nothing asked of the upstream

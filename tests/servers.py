"""Real ``twistd ministry`` processes and real built projects, for end-to-end tests.

Plain functions and classes, not fixtures, so any test module (or a
benchmark script) can use them:

- :func:`free_port` picks a loopback port, :func:`wait_listening` waits for
  a peer server to listen on it;
- :class:`MinistryProcess` runs ``twistd -n ministry`` in a subprocess,
  waits until ``/simple/`` answers, and stops, restarts and cleans up;
- :func:`build_sample_project` builds a tiny setuptools project into a
  wheel and an sdist with the installed ``build``, offline;
- :func:`client_env` is the environment for pip, uv and twine subprocesses:
  no user configuration and no default index, so nothing but the daemon
  under test is ever contacted.

The daemon runs from this source tree: the repository root is put first on
``PYTHONPATH`` of the child, so the ``twisted/plugins`` directory of the
checkout is what twistd discovers, and an installed copy that has gone stale
cannot shadow it. Set ``MINISTRY_TEST_INSTALLED=1`` to test the installed
copy instead (after ``pip install .``).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

#: The repository checkout holding ``ministry/`` and ``twisted/plugins/``.
REPO_ROOT = Path(__file__).resolve().parent.parent

#: ``twistd`` as a module call on this interpreter, so the child sees the
#: packages of the interpreter running the tests (``python -m twisted`` is
#: ``twist``, a different command without ``-n`` or ``--pidfile``).
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]

#: Environment variables that would point pip, uv or twine somewhere else.
_REDIRECTING = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_TRUSTED_HOST",
    "PIP_REQUIRE_VIRTUALENV",
    "UV_INDEX",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_PUBLISH_URL",
    "UV_PUBLISH_USERNAME",
    "UV_PUBLISH_PASSWORD",
    "UV_PUBLISH_TOKEN",
    "TWINE_REPOSITORY",
    "TWINE_REPOSITORY_URL",
    "TWINE_USERNAME",
    "TWINE_PASSWORD",
    "TWINE_CERT",
    "PYTHONPATH",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_listening(port: int, process: subprocess.Popen, what: str, timeout: float = 20) -> None:
    """Wait until a peer server we started listens; fail if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while not listening(port):
        assert process.poll() is None, f"{what} exited"
        assert time.monotonic() < deadline, f"{what} did not start"
        time.sleep(0.05)


def call(
    url: str, method: str, path: str, body: bytes = b"", headers=None, timeout: float = 60.0
) -> tuple[int, bytes]:
    """One request to a daemon at ``url`` on a fresh connection: (status, body).

    Blocking and without a connection pool on purpose: the end-to-end tests
    call it from threads, and each request must not wait behind another's.
    """
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=timeout)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class ChildServer:
    """A server binary the tests run as a child process: started on construction.

    A start that fails, or is interrupted, still closes, so that neither a
    process nor a temporary directory outlives a fixture that never yielded.
    Subclasses set up what :meth:`start` needs, then call
    :meth:`_start_or_close`; they define ``start`` and ``close``.
    """

    def __init__(self, binary: str | None, missing: str, prefix: str) -> None:
        if binary is None:
            raise FileNotFoundError(missing)
        self.binary = binary
        self.directory = Path(tempfile.mkdtemp(prefix=prefix))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _start_or_close(self) -> None:
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def client_env(home: Path | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for pip, uv and twine subprocesses: loopback only.

    User and site configuration is ignored, no index is inherited from the
    environment, the loopback address bypasses any proxy, and ``home`` (when
    given) replaces ``HOME`` so that ``~/.pypirc``, keyrings and caches of
    the person running the tests play no part.
    """
    env = {key: value for key, value in os.environ.items() if key not in _REDIRECTING}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_NO_COLOR="1",
        PIP_PROGRESS_BAR="off",
        UV_NO_CONFIG="1",
        UV_NO_PROGRESS="1",
        UV_PYTHON_DOWNLOADS="never",
        UV_KEYRING_PROVIDER="disabled",
        NO_COLOR="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
        env["XDG_CONFIG_HOME"] = str(home / ".config")
        env["XDG_CACHE_HOME"] = str(home / ".cache")
        env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    env.update(extra or {})
    return env


class MinistryProcess:
    """A ``twistd -n ministry`` subprocess on a loopback port.

    ``MinistryProcess(data_dir, "--max-upload-size", "1M")`` starts nothing
    until :meth:`start` (or ``with``). stdout and stderr go to
    ``<data_dir>/ministry.log``, appended across restarts; twistd writes the
    access log there (one ``"GET /path HTTP/1.1" 200`` line per request), so
    tests can assert what a client fetched. The port is chosen once and
    kept across restarts, so :attr:`url` stays valid.
    """

    #: What must answer 200 for the daemon to count as ready (a ``--private``
    #: daemon answers /simple/ with 401, so its tests wait on /health).
    ready_path = "/simple/"

    def __init__(
        self,
        data_dir: Path | str,
        *extra_args: str,
        port: int | None = None,
        startup_timeout: float = 20.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.extra_args = tuple(extra_args)
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.env = dict(env or {})
        self.log_path = self.data_dir / "ministry.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            *TWISTD,
            "-n",
            "--pidfile=",
            "ministry",
            "--port",
            f"tcp:{self.port}:interface=127.0.0.1",
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if os.environ.get("MINISTRY_TEST_INSTALLED") != "1":
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            )
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        return env

    def start(self) -> MinistryProcess:
        """Start the daemon and wait until ``GET`` :attr:`ready_path` answers 200."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the daemon is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"=== test harness: starting {' '.join(self.command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=self._child_env(),
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error: object = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"twistd ministry exited with status {self.process.returncode} "
                    f"before answering.\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
                    last_error = f"status {response.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"status {exc.code} {exc.reason}"
            except OSError as exc:
                last_error = exc
            time.sleep(0.1)
        raise RuntimeError(
            f"twistd ministry did not answer GET {self.ready_path} within {self.startup_timeout} s "
            f"(last error: {last_error}).\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; the exit status."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        return process.returncode

    def restart(self) -> MinistryProcess:
        """Stop and start again on the same port with the same data directory."""
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        """Everything the daemon wrote so far (all runs)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        """A mark for :meth:`log_since`: the log's current length in bytes."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark: int) -> str:
        """What the daemon wrote after :meth:`log_size` returned ``mark``."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(mark)
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)

    def __enter__(self) -> MinistryProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def build_sample_project(
    tmp_path: Path,
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    dependencies: Iterable[str] = (),
    readme: str = "# A sample project\n\nBuilt by the MinistryOfPackages test suite.\n",
    marker: str = "",
) -> dict[str, Path]:
    """Build ``name`` ``version`` into a wheel and an sdist, offline.

    Returns ``{"wheel": ..., "sdist": ..., "source": ..., "outdir": ...}``.
    ``marker`` goes into the module, so two builds of the same name and
    version with different markers give files of the same names and
    different bytes (what a conflicting re-upload needs). Uses the installed
    setuptools (``--no-isolation``): no index is contacted. Falls back to
    ``pip wheel --no-build-isolation`` and setuptools' PEP 517 hooks if
    ``build`` is unusable.
    """
    module = name.replace("-", "_").replace(".", "_").lower()
    work = _unique_dir(Path(tmp_path), f"build-{module}-{version}")
    source = work / "src"
    outdir = work / "dist"
    (source / module).mkdir(parents=True)
    outdir.mkdir()
    lines = [
        "[build-system]",
        'requires = ["setuptools>=61"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f'name = "{name}"',
        f'version = "{version}"',
        'description = "A sample project built by the MinistryOfPackages tests"',
        'readme = "README.md"',
        f"dependencies = {json.dumps(list(dependencies))}",
    ]
    if requires_python is not None:
        lines.append(f'requires-python = "{requires_python}"')
    lines += ["", "[tool.setuptools]", f'packages = ["{module}"]', ""]
    (source / "pyproject.toml").write_text("\n".join(lines), encoding="utf-8")
    (source / "README.md").write_text(readme, encoding="utf-8")
    (source / module / "__init__.py").write_text(
        textwrap.dedent(
            f'''\
            """{name} {version}, a sample project."""

            __version__ = "{version}"
            MARKER = {marker!r}
            '''
        ),
        encoding="utf-8",
    )
    env = client_env(extra={"SOURCE_DATE_EPOCH": "315532800"})
    build = ["-m", "build", "--no-isolation", "--wheel", "--sdist", "--outdir", str(outdir)]
    built = _build_step([*build, str(source)], env)
    if built.returncode != 0:
        _build_without_build(source, outdir, env, built.stdout + built.stderr)
    wheels = sorted(outdir.glob("*.whl"))
    sdists = sorted(outdir.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise RuntimeError(f"expected one wheel and one sdist in {outdir}, got {wheels + sdists}")
    return {"wheel": wheels[0], "sdist": sdists[0], "source": source, "outdir": outdir}


def _build_step(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python ARGS``, its output kept for the error a failed build raises.

    Every way of building the sample project runs the same way: this
    interpreter, the loopback-only client environment, five minutes at most.
    """
    command = [sys.executable, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


_BUILD_SDIST = "import sys, setuptools.build_meta as b; b.build_sdist(sys.argv[1])"


def _build_without_build(source: Path, outdir: Path, env: dict[str, str], why: str) -> None:
    """The fallback: ``pip wheel`` for the wheel, setuptools' hook for the sdist."""
    pip_wheel = ["-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index"]
    wheel = _build_step([*pip_wheel, "--wheel-dir", str(outdir), str(source)], env)
    sdist = _build_step(["-c", _BUILD_SDIST, str(outdir)], env, cwd=source)
    if wheel.returncode or sdist.returncode:
        raise RuntimeError(
            "could not build the sample project.\n"
            f"python -m build:\n{why}\npip wheel:\n{wheel.stdout}{wheel.stderr}\n"
            f"build_sdist:\n{sdist.stdout}{sdist.stderr}"
        )


def _unique_dir(parent: Path, stem: str) -> Path:
    for attempt in range(1000):
        candidate = parent / (stem if attempt == 0 else f"{stem}-{attempt}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"no free directory name for {stem} in {parent}")

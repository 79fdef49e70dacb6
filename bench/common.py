"""Shared pieces of the benchmarks: a seeded daemon and a wrk runner.

Benchmarks are scripts, not timed tests: run them by hand on a quiet
machine and compare numbers from the same run. They reuse the test
helpers (tests/servers.py, tests/archive_factory.py) so the daemon and the
distributions are built exactly as the tests build them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from archive_factory import (  # noqa: E402, F401 - sdists for corpus.py
    make_sdist,
    make_wheel,
    sdist_filename,
    wheel_filename,
)
from http_harness import multipart, post_file, upload_fields  # noqa: E402, F401 - for load.py

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"


def publish(lines: list[str], name: str) -> None:
    """Print a benchmark's report and keep it as ``bench/results/<name>``.

    Every benchmark ends this way, so that the numbers on screen and the ones
    committed for comparison are the same text.
    """
    report = "\n".join(lines)
    print(report)
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / name).write_text(report + "\n")


def compile_checkout() -> None:
    """Write the bytecode of this checkout's modules, as an installed ministry has it.

    pip compiles what it installs, but the checkout is installed editable
    and this machine sets ``PYTHONDONTWRITEBYTECODE``: without this, every
    timed start would compile ministry's sources again (a sixth of a start).
    """
    command = [sys.executable, "-m", "compileall", "-q", "ministry", "twisted/plugins"]
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def post_wheel(url: str, name: str, version: str) -> None:
    """Upload one small valid wheel."""
    post_file(url, name, version, wheel_filename(name, version), make_wheel(name, version))


def seed(url: str, projects: int, versions: int = 3, workers: int = 4, first: int = 0) -> None:
    """``projects`` projects (numbered from ``first``) of ``versions`` wheels, concurrently."""
    jobs = [
        (f"bench-{n:06d}", f"1.{v}")
        for n in range(first, first + projects)
        for v in range(versions)
    ]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda job: post_wheel(url, *job), jobs))


@dataclass(frozen=True)
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: Connect, read, write errors and timeouts wrk counted (not in ``errors``).
    socket_errors: int = 0
    #: Every request wrk completed, from its "N requests in" line.
    requests: int = 0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _millis(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * _UNITS[unit]


def wrk(
    url: str,
    connections: int = 32,
    seconds: int = 10,
    accept: str | None = None,
    timeout: int = 2,
    headers: tuple[str, ...] = (),
) -> Load:
    """Load ``url`` from a separate wrk process (Debian's package) and read its summary.

    ``timeout`` is wrk's per-request timeout in seconds: a request slower
    than that is counted as a socket error and left out of the latencies,
    so give slow servers a longer one rather than flatter their p99.
    ``headers`` are more request headers, each ``"Name: value"``.
    """
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout}s"]
    command += ["--latency", url]
    if accept:
        command[1:1] = ["-H", f"Accept: {accept}"]
    for header in headers:
        command[1:1] = ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    # No latency distribution when every request failed: no figure, not a crash.
    p50_found = re.search(r"\s50%\s+(\S+)", output)
    p99_found = re.search(r"\s99%\s+(\S+)", output)
    p50 = _millis(p50_found.group(1)) if p50_found else float("nan")
    p99 = _millis(p99_found.group(1)) if p99_found else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    completed = re.search(r"(\d+) requests in", output)
    return Load(
        rate,
        p50,
        p99,
        int(errors.group(1)) if errors else 0,
        sum(int(n) for n in sockets.groups()) if sockets else 0,
        int(completed.group(1)) if completed else 0,
    )

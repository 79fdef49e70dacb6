"""The mirror against bandersnatch: one selection of projects from a loopback upstream.

    python bench/mirror_peers.py [--projects 500] [--rounds 3] [--workers 3,10] [--profile]

What it does (issue 17, target 3):

1. installs bandersnatch into bench/.cache/venvs/bandersnatch (reused later);
2. starts an upstream ``twistd ministry`` on loopback and uploads
   ``--projects`` synthetic projects of 3 small valid wheels each over 8
   keep-alive connections (bench/load.py);
3. measures the upstream's own file-serving rate, the ceiling: every
   selected file fetched once over 4 and 10 keep-alive connections, and
   the same with each project's JSON page too (what a mirror must read);
4. alternating, ``--rounds`` times, each first pass into a fresh directory
   and then an unchanged re-run over the same one:

   - ministry's daemon (``twistd ministry --config`` with a ``[mirror]``
     table naming every project, the timer-driven MirrorService): from
     ``Popen`` until ``/mirror/?format=json`` says idle after one run, and
     the run's own duration from its "Mirror run finished" log line;
   - ``ministry-admin mirror run``, the one-shot pass, as a process;
   - ``bandersnatch mirror`` with ``master`` the upstream over plain http
     (``allow-non-https = true``), ``api-method = simple`` (the upstream
     serves no XML-RPC; bandersnatch then lists projects and their serials
     from the PEP 691 ``/simple/`` JSON and reads ``/pypi/<p>/json``), the
     ``allowlist_project`` filter naming the same projects, per
     ``--workers`` value (3 is its default and documented recommendation,
     10 its maximum);

5. writes bench/results/mirror_peers.md (medians, min and max) and prints it,
   with each pass's CPU time beside its wall time (the mirror's process
   alone, from /proc or getrusage; the daemon's from its start): on a
   shared machine the wall times move by a factor of two, the CPU far less.

With ``--profile``, one more ``ministry-admin`` first pass runs under py-spy
(bench/results/mirror-profile.txt: the hottest functions).

Each pass is checked, not just timed: every selected file must be on disk
afterwards, with no error, and a re-run must fetch no file.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from common import JSON_ACCEPT, REPO, publish
from corpus import synthetic_jobs, synthetic_name, synthetic_wheel
from profile_page import RESULTS, shares
from servers_peer import Ministry, ensure_venv, http_get, venv_versions

PYTHON = REPO / ".venv" / "bin" / "python"

MIRROR_TOML = """\
[mirror]
every = "24h"
projects = [{projects}]
dependencies = false
latest = 3
"""

BANDERSNATCH_CONF = """\
[mirror]
directory = {directory}
master = {master}
allow-non-https = true
api-method = simple
json = false
release-files = true
hash-index = false
stop-on-error = true
timeout = 30
global-timeout = 3600
workers = {workers}

[plugins]
enabled =
    allowlist_project

[allowlist]
packages =
{packages}
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children so far (getrusage)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def files_under(root: Path) -> set[str]:
    """Distribution files below ``root`` (staging areas left out)."""
    if not root.exists():
        return set()
    return {
        path.name
        for path in root.rglob("*")
        if path.is_file() and path.name.endswith(".whl") and ".staging" not in path.parts
    }


# -- the ceiling ---------------------------------------------------------------------------


def fetch_all(base: str, paths: list[str], connections: int) -> float:
    """Seconds to GET every path once over ``connections`` keep-alive connections."""
    host, port = base.removeprefix("http://").split(":")
    queue = iter(paths)
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        while True:
            with lock:
                path = next(queue, None)
            if path is None:
                break
            connection.request("GET", path, headers={"Accept": JSON_ACCEPT})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(f"{path}: {response.status}")
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"the upstream refused {len(failures)} fetches: {failures[0]}")
    return seconds


# -- ministry -------------------------------------------------------------------------------


def mirror_report(daemon: Ministry) -> dict:
    status, body = http_get(f"{daemon.base}/mirror/?format=json")
    if status != 200:
        raise RuntimeError(f"/mirror/: {status} {body[:200]!r}")
    return json.loads(body)


def ministry_daemon_pass(work: Path, config: Path, upstream: str, wanted: set[str]) -> dict:
    """One daemon start on ``work``: wall seconds to the end of its first run, and the run's."""
    daemon = Ministry(work, "--config", str(config), "--upstream", upstream, data_dir=work)
    mark = daemon.log.stat().st_size if daemon.log.exists() else 0
    started = time.perf_counter()
    daemon.start()
    try:
        while True:
            report = mirror_report(daemon)
            if report["state"] == "idle" and report["runs"] >= 1:
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        assert daemon.process is not None
        cpu = process_cpu(daemon.process.pid)
    finally:
        daemon.stop()
    text = daemon.log.read_text(errors="replace")[mark:]
    found = re.search(r"Mirror run finished in ([\d.]+) s", text)
    check(report["errors"] == [], f"ministry daemon errors: {report['errors'][:3]}")
    check(wanted <= files_under(work / "upstream" / "files"), "ministry daemon missed files")
    return {
        "wall": wall,
        "run": float(found.group(1)) if found else float("nan"),
        "cpu": cpu,
        "fetched": report["files_fetched"],
    }


def ministry_admin_pass(
    work: Path, config: Path, upstream: str, wanted: set[str], spy: Path | None = None
) -> dict:
    """``ministry-admin mirror run`` on ``work`` as one process: its wall seconds.

    With ``spy``, py-spy records the pass into that file (raw stacks).
    """
    command = [str(PYTHON), "-m", "ministry.admin", "--config", str(config)]
    if spy is not None:
        recorder = [
            str(PYTHON.parent / "py-spy"),
            "record",
            "--gil",
            "--format",
            "raw",
            "-r",
            "200",
        ]
        command = [*recorder, "-o", str(spy), "--", *command]
    command += ["--data-dir", str(work), "--upstream", upstream, "mirror", "run"]
    work.mkdir(parents=True, exist_ok=True)
    started, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, cwd=work, env=_env())
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu
    check(done.returncode == 0, f"ministry-admin mirror run: {done.stderr[-800:]}")
    check(wanted <= files_under(work / "upstream" / "files"), "ministry-admin missed files")
    fetched = re.findall(r"(\d+) files fetched", done.stderr)
    return {"wall": wall, "cpu": cpu, "fetched": int(fetched[-1]) if fetched else -1}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    return env


# -- bandersnatch --------------------------------------------------------------------------


def bandersnatch_pass(
    bin_dir: Path, work: Path, master: str, names: list[str], workers: int, wanted: set[str]
) -> dict:
    """``bandersnatch mirror`` into ``work`` as one process: its wall seconds."""
    conf = work / "bandersnatch.conf"
    if not conf.exists():
        work.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            BANDERSNATCH_CONF.format(
                directory=work / "mirror",
                master=master,
                workers=workers,
                packages="\n".join(f"    {name}" for name in names),
            )
        )
    before = files_under(work / "mirror" / "web" / "packages")
    command = [str(bin_dir / "bandersnatch"), "-c", str(conf), "mirror"]
    started, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, cwd=work)
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu
    (work / "bandersnatch.log").write_text(done.stdout + done.stderr)
    check(done.returncode == 0, f"bandersnatch mirror: {done.stderr[-800:]}")
    after = files_under(work / "mirror" / "web" / "packages")
    check(wanted <= after, f"bandersnatch missed {len(wanted - after)} files")
    return {"wall": wall, "cpu": cpu, "fetched": len(after - before)}


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


# -- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="3,10", help="bandersnatch workers, comma-separated")
    parser.add_argument(
        "--profile", action="store_true", help="then one ministry-admin first pass under py-spy"
    )
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]
    bin_dir = ensure_venv("bandersnatch")
    version = venv_versions(bin_dir, ["bandersnatch"])["bandersnatch"]
    names = [synthetic_name(n) for n in range(args.projects)]
    jobs = list(synthetic_jobs(0, args.projects))
    wanted = {synthetic_wheel(name, v)[0] for name, v in jobs}
    times: dict[str, list[float]] = {}

    def record(label: str, seconds: float) -> None:
        times.setdefault(label, []).append(seconds)
        log(f"  {label}: {seconds:.2f} s")

    with tempfile.TemporaryDirectory(prefix="mirror-peers-") as scratch_dir:
        scratch = Path(scratch_dir)
        with Ministry(scratch / "upstream") as upstream:
            upstream.start()
            log(f"uploading {len(jobs)} files to the upstream")
            loaded = upstream.load_synthetic(jobs)
            check(loaded.failures == 0, f"upload refused: {loaded.sample_failure}")
            log(f"  {loaded.per_second:.0f} uploads/s")
            simple = f"{upstream.base}/simple/"
            files = [f"/packages/{name}/{synthetic_wheel(name, v)[0]}" for name, v in jobs]
            pages = [f"/simple/{name}/" for name in names]
            config = scratch / "ministry.toml"
            config.write_text(MIRROR_TOML.format(projects=", ".join(f'"{n}"' for n in names)))
            counter = iter(range(1_000_000))

            def fresh() -> Path:
                return scratch / f"run-{next(counter)}"

            passes: list[tuple[str, Callable[[Path], dict]]] = [
                ("ministry daemon", lambda w: ministry_daemon_pass(w, config, simple, wanted)),
                (
                    "ministry-admin mirror run",
                    lambda w: ministry_admin_pass(w, config, simple, wanted),
                ),
            ]
            for workers in worker_counts:
                passes.append(
                    (
                        f"bandersnatch, {workers} workers",
                        lambda w, n=workers: bandersnatch_pass(
                            bin_dir, w, upstream.base, names, n, wanted
                        ),
                    )
                )
            for round_number in range(1, args.rounds + 1):
                log(f"round {round_number}")
                for connections in (4, 10):
                    record(
                        f"ceiling: files, {connections} connections",
                        fetch_all(upstream.base, files, connections),
                    )
                    record(
                        f"ceiling: pages + files, {connections} connections",
                        fetch_all(upstream.base, pages + files, connections),
                    )
                for label, run in passes:
                    work = fresh()
                    first = run(work)
                    check(first["fetched"] == len(wanted), f"{label}: fetched {first}")
                    record(f"{label}: first pass", first["wall"])
                    again = run(work)
                    check(again["fetched"] == 0, f"{label}: the re-run fetched {again}")
                    record(f"{label}: unchanged re-run", again["wall"])
                    if "run" in first:
                        record(f"{label}: first pass, the run alone", first["run"])
                        record(f"{label}: unchanged re-run, the run alone", again["run"])
                    record(f"{label}: first pass, CPU", first["cpu"])
                    record(f"{label}: unchanged re-run, CPU", again["cpu"])
                    shutil.rmtree(work)
            if args.profile:
                RESULTS.mkdir(exist_ok=True)
                folded = RESULTS / "mirror-profile.folded"
                ministry_admin_pass(fresh(), config, simple, wanted, spy=folded)
                folded.with_suffix(".txt").write_text(shares(folded) + "\n")
                log(f"profile of a first pass: {folded.with_suffix('.txt')}")
    report(args, version, len(wanted), times)


def report(
    args: argparse.Namespace, version: str, count: int, times: dict[str, list[float]]
) -> None:
    command = " ".join(["python", "bench/mirror_peers.py", *sys.argv[1:]])
    lines = [
        f"`{command}`: {args.projects} projects x 3 wheels ({count} files, about 1 KB each) "
        f"on a loopback `twistd ministry` upstream; bandersnatch {version}; "
        f"{os.cpu_count()} cores, shared; median of {args.rounds} rounds.",
        "",
        "| what | median s | min s | max s | files/s (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, values in times.items():
        median = statistics.median(values)
        timed = "re-run" not in label and "CPU" not in label
        rate = f"{count / median:,.0f}" if timed and median else ""
        lines.append(f"| {label} | {median:.2f} | {min(values):.2f} | {max(values):.2f} | {rate} |")
    publish(lines, "mirror_peers.md")


if __name__ == "__main__":
    main()

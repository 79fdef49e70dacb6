"""ministry's proxy against proxpi and devpi-server, in front of one upstream (issue 17).

    python bench/proxy_peers.py [--rounds 3] [--warm 2] [--clients 16] [--seconds 60]
                                [--only ministry,proxpi,devpi]

One run, one machine, everything on loopback:

1. the requirement set (:data:`REQUIREMENTS`, ten popular projects that pull
   in some thirty with their dependencies) is fetched once with ``pip
   download`` into bench/.cache/proxy_set/ (whatever pip gives for this
   Python; later runs reuse it);
2. the upstream is a ``twistd ministry`` holding exactly those files,
   uploaded over HTTP;
3. in front of it, each configured as its docs say: ministry
   (``--upstream URL``), proxpi (gunicorn, as its Docker image runs it,
   ``PROXPI_INDEX_URL`` and ``PROXPI_CACHE_DIR``) and devpi-server (a
   ``type=mirror`` index with ``mirror_url``);
4. ``--rounds`` times, the servers in a rotated order each round (the
   machine is shared, so a noisy minute should not land on one server),
   for pip and for uv: the install straight from the upstream, then per
   proxy a fresh instance with an empty cache, one cold install and
   ``--warm`` warm ones. Installs are ``pip install --no-cache-dir -r
   req.txt --target T`` and ``uv pip install --no-cache -r req.txt --target
   T``, each into a new target; medians are reported;
5. per server (rotated again), a fresh instance warmed by one install, then
   ``--clients`` concurrent loops of uv installs for ``--seconds`` (a loop
   starts no install after that; every install it started is counted and
   waited for): installs per minute; then the resident memory of the
   server's processes (gunicorn's master and worker summed);
6. bench/results/proxy_peers.md: the tables and every target, MET or NOT MET.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from common import publish
from corpus import CACHE, Dist, _parse
from load import rss_mb
from profile_page import RESULTS, py_spy, shares
from servers import client_env
from servers_peer import DevpiMirror, Ministry, Proxpi, Server, ensure_venv, venv_versions

#: Top-level requirements: pure-Python and binary wheels, about 30 projects in all.
REQUIREMENTS = (
    "requests",
    "flask",
    "rich",
    "attrs",
    "pydantic",
    "httpx",
    "python-dateutil",
    "pyyaml",
    "packaging",
    "pytest",
)
SET_DIR = CACHE / "proxy_set"
PROXIES = ("ministry", "proxpi", "devpi")
STRAIGHT = "straight"
UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")


def requirement_set() -> tuple[Path, list[Dist]]:
    """``req.txt`` and the files it resolves to, downloaded on the first run."""
    requirements = SET_DIR / "req.txt"
    dists = SET_DIR / "dists"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    marker = dists / ".complete"
    if not marker.exists() or marker.read_text() != wanted:
        shutil.rmtree(dists, ignore_errors=True)
        dists.mkdir(parents=True)
        requirements.write_text(wanted)
        print(f"  pip download -r {requirements}", flush=True)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "-r", str(requirements)]
        subprocess.run([*command, "--dest", str(dists)], check=True)
        marker.write_text(wanted)
    return requirements, [_parse(path) for path in sorted(dists.glob("*.whl"))]


class Installer:
    """Times one uncached install of the set from an index into a new target."""

    def __init__(self, requirements: Path, scratch: Path) -> None:
        self.requirements = requirements
        self.scratch = scratch
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, tool: str, index_url: str) -> float:
        with self._lock:
            self._count += 1
            target = self.scratch / f"target-{self._count}"
        if tool == "pip":
            command = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--quiet"]
        else:
            command = [UV, "pip", "install", "--no-cache", "--python", sys.executable]
        command += ["-r", str(self.requirements), "--target", str(target)]
        command += ["--index-url", index_url]
        started = time.perf_counter()
        done = subprocess.run(
            command, capture_output=True, text=True, env=client_env(self.scratch / "home")
        )
        seconds = time.perf_counter() - started
        shutil.rmtree(target, ignore_errors=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        return seconds


@dataclass
class Concurrent:
    installs: int
    failures: int
    seconds: float
    rss_mb: float
    cpu: float  # the server's CPU seconds during the run

    @property
    def per_minute(self) -> float:
        return self.installs / self.seconds * 60

    @property
    def cpu_per_install(self) -> float:
        return self.cpu / max(self.installs, 1)


@dataclass(frozen=True)
class Sample:
    """One install: its wall time, and the CPU the server spent meanwhile."""

    seconds: float
    cpu: float


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn's workers), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB."""
    total = 0.0
    for each in process_tree(pid):
        with contextlib.suppress(OSError, KeyError):
            total += rss_mb(each)
    return total


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants so far.

    On a shared machine the wall time of an install moves with everyone
    else's load; the CPU the server spent on it moves far less.
    """
    ticks = 0
    for each in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def concurrent_loops(
    install: Installer, index_url: str, clients: int, seconds: float
) -> tuple[int, int, float]:
    """``clients`` loops of uv installs until ``seconds`` have passed: (done, failed, elapsed)."""
    counts = {"done": 0, "failed": 0}
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + seconds

    def loop() -> None:
        while time.perf_counter() < deadline:
            try:
                install("uv", index_url)
                outcome = "done"
            except RuntimeError as exc:
                print(f"    install failed: {str(exc)[-300:]}", flush=True)
                outcome = "failed"
            with lock:
                counts[outcome] += 1

    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(loop) for _ in range(clients)]:
            future.result()
    return counts["done"], counts["failed"], time.perf_counter() - started


def rotated(names: list[str], turn: int) -> list[str]:
    turn %= len(names)
    return names[turn:] + names[:turn]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm", type=int, default=2, help="warm installs per fresh proxy")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--only", default=",".join(PROXIES), help="proxies to run")
    parser.add_argument("--tools", default="pip,uv")
    parser.add_argument("--profile", action="store_true", help="py-spy on ministry under load")
    args = parser.parse_args()
    # A SIGTERM unwinds like Ctrl-C, so every server started here is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # py-spy and uv may live beside this Python rather than on PATH.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    proxies = [name for name in args.only.split(",") if name]
    tools = [tool for tool in args.tools.split(",") if tool]
    requirements, dists = requirement_set()
    bins = {name: ensure_venv(name) for name in ("proxpi", "devpi") if name in proxies}
    versions = {
        **(venv_versions(bins["proxpi"], ["proxpi", "gunicorn"]) if "proxpi" in bins else {}),
        **(venv_versions(bins["devpi"], ["devpi-server"]) if "devpi" in bins else {}),
    }
    times: dict[tuple[str, str, str], list[Sample]] = {}
    loads: dict[str, Concurrent] = {}
    with tempfile.TemporaryDirectory(prefix="proxy-peers-") as scratch_dir:
        scratch = Path(scratch_dir)
        install = Installer(requirements, scratch)
        with Ministry(scratch / "upstream", "--access-log", "off") as upstream:
            upstream.start()
            loaded = upstream.load_dists(dists)
            print(f"  upstream holds {loaded.count} files", flush=True)
            upstream_simple = upstream.simple_url
            counter = iter(range(1_000_000))

            def fresh(name: str) -> Server:
                work = scratch / f"{name}-{next(counter)}"
                if name == "ministry":
                    return Ministry(work, "--upstream", upstream_simple)
                if name == "proxpi":
                    return Proxpi(work, bins["proxpi"], upstream_simple)
                return DevpiMirror(work, bins["devpi"], upstream_simple)

            def record(tool: str, name: str, cache: str, server: Server) -> None:
                cpu = tree_cpu_seconds(server.pid)
                seconds = install(tool, server.simple_url)
                cpu = tree_cpu_seconds(server.pid) - cpu
                times.setdefault((tool, name, cache), []).append(Sample(seconds, cpu))
                print(f"    {tool} {name} {cache}: {seconds:.2f} s, CPU {cpu:.2f} s", flush=True)

            for turn in range(args.rounds):
                print(f"  round {turn + 1} of {args.rounds}", flush=True)
                for tool in tools:
                    for name in rotated([STRAIGHT, *proxies], turn):
                        if name == STRAIGHT:
                            for _ in range(args.warm):
                                record(tool, name, "-", upstream)
                            continue
                        with fresh(name) as server:
                            server.start()
                            record(tool, name, "cold", server)
                            for _ in range(args.warm):
                                record(tool, name, "warm", server)
            if args.clients:
                for name in rotated([STRAIGHT, *proxies], args.rounds):
                    profile = args.profile and name == "ministry"
                    loads[name] = load_one(
                        name, fresh, upstream, install, args.clients, args.seconds, profile
                    )
    report(args, versions, len(dists), dists, times, loads, proxies, tools)


def load_one(
    name: str,
    fresh: Callable[[str], Server],
    upstream: Ministry,
    install: Installer,
    clients: int,
    seconds: float,
    profile: bool,
) -> Concurrent:
    """The concurrent-clients figure and the memory after it, for one server.

    ``profile``: py-spy samples the server meanwhile; the hottest functions
    go to bench/results/proxy_peers-profile.txt.
    """
    print(f"  {clients} concurrent uv loops, {seconds:g} s: {name}", flush=True)
    with contextlib.ExitStack() as stack:
        server: Server = upstream
        if name != STRAIGHT:
            server = stack.enter_context(fresh(name))
            server.start()
            install("uv", server.simple_url)  # warm the cache
        folded = RESULTS / "proxy_peers-profile.folded"
        spy = py_spy(server.pid, int(seconds), folded, "raw") if profile else None
        cpu = tree_cpu_seconds(server.pid)
        done, failed, elapsed = concurrent_loops(install, server.simple_url, clients, seconds)
        cpu = tree_cpu_seconds(server.pid) - cpu
        result = Concurrent(done, failed, elapsed, tree_rss_mb(server.pid), cpu)
        if spy is not None:
            spy.wait()
            (RESULTS / "proxy_peers-profile.txt").write_text(shares(folded) + "\n")
    print(
        f"    {result.per_minute:.1f} installs/min, {result.rss_mb:.0f} MB, "
        f"CPU {result.cpu_per_install:.2f} s per install",
        flush=True,
    )
    return result


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def report(
    args: argparse.Namespace,
    versions: dict[str, str],
    projects: int,
    dists: list[Dist],
    times: dict[tuple[str, str, str], list[Sample]],
    loads: dict[str, Concurrent],
    proxies: list[str],
    tools: list[str],
) -> None:
    size = sum(dist.path.stat().st_size for dist in dists) / 1e6
    command = " ".join(["python", "bench/proxy_peers.py", *sys.argv[1:]])
    lines = [
        f"`{command}`: {projects} projects (one wheel each, {size:.1f} MB) from "
        f"`{' '.join(REQUIREMENTS)}`; an upstream ministry on loopback; "
        + ", ".join(f"{name} {version}" for name, version in versions.items())
        + f". {args.rounds} rounds, servers rotated each round; cold = a fresh proxy, "
        f"warm = {args.warm} installs after it; client caches off.",
        "",
        "Server CPU: what the server's processes (not the upstream's) spent during the "
        "install, the figure least moved by other load on the machine.",
        "",
        "| installer | server | cache | median s | min s | max s | runs | server CPU s |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for (tool, name, cache), samples in times.items():
        walls = [sample.seconds for sample in samples]
        cpu = statistics.median(sample.cpu for sample in samples)
        lines.append(
            f"| {tool} | {name} | {cache} | {statistics.median(walls):.2f} | "
            f"{min(walls):.2f} | {max(walls):.2f} | {len(walls)} | {cpu:.2f} |"
        )
    if loads:
        lines += [
            "",
            f"{args.clients} concurrent `uv pip install` loops, {args.seconds:g} s, warm cache:",
            "",
            "| server | installs/min | installs | failed | server CPU s per install "
            "| RSS after, MB |",
            "|---|---:|---:|---:|---:|---:|",
            *(
                f"| {name} | {load.per_minute:.1f} | {load.installs} | {load.failures} | "
                f"{load.cpu_per_install:.2f} | {load.rss_mb:.0f} |"
                for name, load in loads.items()
            ),
        ]
    lines += ["", "| target | figure | verdict |", "|---|---|---|"]
    lines += targets(times, loads, proxies, tools)
    publish(lines, "proxy_peers.md")


def targets(
    times: dict[tuple[str, str, str], list[Sample]],
    loads: dict[str, Concurrent],
    proxies: list[str],
    tools: list[str],
) -> list[str]:
    def median(tool: str, name: str, cache: str) -> float:
        return statistics.median(sample.seconds for sample in times[(tool, name, cache)])

    rows = []
    for tool in tools:
        straight = median(tool, STRAIGHT, "-")
        warm = median(tool, "ministry", "warm")
        for peer in (p for p in proxies if p != "ministry"):
            theirs = median(tool, peer, "warm")
            rows.append(
                f"| {tool}, warm: ministry no slower than {peer} | {warm:.2f} s vs "
                f"{theirs:.2f} s | {verdict(warm <= theirs)} |"
            )
        rows.append(
            f"| {tool}, warm: within 10% of straight | {warm:.2f} s vs {straight:.2f} s "
            f"({warm / straight:.2f}x) | {verdict(warm <= 1.1 * straight)} |"
        )
        cold = median(tool, "ministry", "cold")
        rows.append(
            f"| {tool}, cold: within 1.3x of straight | {cold:.2f} s vs {straight:.2f} s "
            f"({cold / straight:.2f}x) | {verdict(cold <= 1.3 * straight)} |"
        )
    if "ministry" in loads:
        ours = loads["ministry"]
        for peer, factor in (("devpi", 3), ("proxpi", 1)):
            if peer in loads:
                theirs = loads[peer].per_minute
                rows.append(
                    f"| concurrent: ministry >= {factor}x {peer} | {ours.per_minute:.1f} vs "
                    f"{theirs:.1f} installs/min ({ours.per_minute / theirs:.2f}x) | "
                    f"{verdict(ours.per_minute >= factor * theirs)} |"
                )
        if "proxpi" in loads:
            theirs_mb = loads["proxpi"].rss_mb
            rows.append(
                f"| RSS after the run: ministry <= proxpi | {ours.rss_mb:.0f} MB vs "
                f"{theirs_mb:.0f} MB | {verdict(ours.rss_mb <= theirs_mb)} |"
            )
    return rows


if __name__ == "__main__":
    main()

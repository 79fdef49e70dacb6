"""The proxy benchmark: installing a dependency tree through it, cold and warm.

    python bench/proxy.py [--fanout 5] [--leaves 3] [--size 200] [--runs 3]

Starts an upstream ``twistd ministry`` on loopback and uploads a tree of
small wheels to it: one root requiring ``--fanout`` projects, each requiring
``--leaves`` projects of its own (1 + 5 + 15 = 21 projects by default), every
wheel padded with ``--size`` KiB of incompressible bytes. Then times
``pip install`` (and ``uv pip install``) of the root, uncached on the
client's side (``--no-cache-dir`` / ``--no-cache``) into a fresh target:

- straight from the upstream;
- through a proxy with an empty cache (a fresh proxy process each run);
- through the same proxy again (pages within their TTL, files cached).

Each cell is the median of ``--runs`` runs. Prints a Markdown table and
writes it to bench/results/proxy.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import make_wheel, post_file, publish, wheel_filename
from servers import MinistryProcess, client_env


def upload(url: str, name: str, version: str, requires: list[str], padding: int) -> None:
    data = make_wheel(
        name,
        version,
        requires_dist=requires,
        extra_members={f"{name.replace('-', '_')}/blob.bin": os.urandom(padding)},
    )
    post_file(url, name, version, wheel_filename(name, version), data)


def seed_tree(url: str, fanout: int, leaves: int, padding: int) -> int:
    """Upload the tree; returns how many projects it has."""
    mids = [f"bench-mid-{m}" for m in range(fanout)]
    for m, mid in enumerate(mids):
        children = [f"bench-leaf-{m}-{n}" for n in range(leaves)]
        for child in children:
            upload(url, child, "1.0", [], padding)
        upload(url, mid, "1.0", children, padding)
    upload(url, "bench-root", "1.0", mids, padding)
    return 1 + fanout + fanout * leaves


def installer(tool: str) -> Callable[[str, Path, Path], float]:
    """A function timing one install of bench-root from an index URL into a target."""

    def run(index: str, target: Path, home: Path) -> float:
        if tool == "pip":
            command = [sys.executable, "-m", "pip", "install", "--no-cache-dir"]
        else:
            command = ["uv", "pip", "install", "--no-cache", "--python", sys.executable]
        command += ["--target", str(target), "--index-url", f"{index}/simple/", "bench-root"]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=client_env(home))
        return time.perf_counter() - started

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fanout", type=int, default=5)
    parser.add_argument("--leaves", type=int, default=3)
    parser.add_argument("--size", type=int, default=200, help="KiB of padding per wheel")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tools = ["pip"] + (["uv"] if shutil.which("uv") else [])
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        counter = iter(range(1_000_000))

        def fresh() -> Path:
            return scratch / f"run-{next(counter)}"

        with MinistryProcess(scratch / "upstream") as upstream:
            projects = seed_tree(upstream.url, args.fanout, args.leaves, args.size * 1024)
            proxy_args = ("--upstream", f"{upstream.url}/simple/")
            for tool in tools:
                install = installer(tool)
                for _ in range(args.runs):
                    direct = install(upstream.url, fresh(), scratch / "home")
                    results.setdefault((tool, "direct from the upstream"), []).append(direct)
                    with MinistryProcess(fresh(), *proxy_args) as proxy:
                        cold = install(proxy.url, fresh(), scratch / "home")
                        warm = install(proxy.url, fresh(), scratch / "home")
                    results.setdefault((tool, "through the proxy, cold cache"), []).append(cold)
                    results.setdefault((tool, "through the proxy, warm cache"), []).append(warm)
    lines = [
        f"`{' '.join(['python', 'bench/proxy.py', *sys.argv[1:]])}`: {projects} projects, "
        f"one {args.size} KiB wheel each, loopback, median of {args.runs} runs "
        "(client caches off).",
        "",
        "| installer | scenario | median s | min s | max s |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {tool} | {scenario} | {statistics.median(times):.2f} | {min(times):.2f} | "
            f"{max(times):.2f} |"
            for (tool, scenario), times in results.items()
        ),
    ]
    publish(lines, "proxy.md")


if __name__ == "__main__":
    main()

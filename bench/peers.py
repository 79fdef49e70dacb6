"""ministry against pypiserver, devpi-server and nginx, in one run on one machine.

    python bench/peers.py [--quick] [--seconds N] [--only ministry,devpi,...]

What it does, in order (issue 8):

1. installs pypiserver and devpi-server into their own virtual environments
   under bench/.cache/venvs (reused on later runs);
2. fetches the real corpus with ``pip download`` into bench/.cache/corpus
   (once) and generates the synthetic one on the fly;
3. for each server in turn (one at a time, so they never compete for the
   two cores): starts it on loopback, loads the real files and a 1 MB wheel,
   then grows the synthetic corpus through the sizes (100, 10,000 and, for
   ministry alone, 100,000 projects of 3 wheels; ``--quick``: 100, 1,000
   and 5,000). At each size it restarts the server three times (median
   time to first answer, resident memory), and loads ``/simple/``,
   ``/simple/<project>/`` (HTML, and JSON where served) and the 1 MB file
   with wrk, 32 connections; at the largest, a project page of a second
   ministry holding 100 projects beside it, in turn;
4. at the shared largest size: twine upload of 20 real files, small-upload
   rate over 8 connections, and a ``pip install`` from the server;
5. nginx serving the same page and file statically (the ceiling), and as a
   reverse proxy in front of ministry; ministry's peak memory while a 1 GiB
   wheel is uploaded;
6. writes bench/results/peers.md (tables with ministry/peer ratios and every
   target of the issue as MET / NOT MET) and prints it.

Nothing is contacted but loopback servers, apart from the registry for the
two virtual environments and the corpus on the first run.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from common import JSON_ACCEPT, REPO, Load, compile_checkout, wrk
from corpus import (
    CACHE,
    ONE_MEG_PROJECT,
    PAGE_PROJECT,
    PIP_INSTALL_PROJECT,
    Dist,
    big_wheel,
    one_meg_wheel,
    real_corpus,
    synthetic_jobs,
    twine_set,
)
from load import RssSampler, UploadResult, rss_mb, status_kib, stream_upload, upload_many
from load import synthetic_upload as _synthetic_upload
from servers import client_env
from servers_peer import (
    Devpi,
    Ministry,
    Nginx,
    Pypiserver,
    Server,
    ensure_venv,
    http_get,
    http_request,
    venv_versions,
)

RESULTS = REPO / "bench" / "results" / "peers.md"
PEERS = ("devpi", "pypiserver")
CONNECTIONS = 32
#: wrk's per-request timeout: long, so a slow server's latencies are
#: counted in its p99 instead of being dropped as socket errors.
WRK_TIMEOUT = 30


@dataclass(frozen=True)
class Plan:
    """The sizes and durations of one run."""

    sizes: tuple[int, ...]  # shared by every server
    ministry_sizes: tuple[int, ...]  # ministry alone, after the shared ones
    seconds: int
    rate_uploads: int
    quick: bool

    @property
    def shared_top(self) -> int:
        return self.sizes[-1]

    @property
    def top(self) -> int:
        return (self.ministry_sizes or self.sizes)[-1]


@dataclass
class SizeResult:
    """What one server measured at one corpus size."""

    projects: int
    load: UploadResult | None = None
    startup_s: float = math.nan
    rss_start_mb: float = math.nan
    rss_after_mb: float = math.nan
    hwm_start_mb: float = math.nan
    hwm_mb: float = math.nan
    pages: dict[str, Load] = field(default_factory=dict)


@dataclass
class ServerResult:
    """Everything measured for one server."""

    label: str
    version: str = ""
    sizes: dict[int, SizeResult] = field(default_factory=dict)
    real_load: UploadResult | None = None
    twine_s: float = math.nan
    upload_rate: UploadResult | None = None
    upload_rate_basic: UploadResult | None = None
    pip_install_s: float = math.nan
    notes: list[str] = field(default_factory=list)


@dataclass
class Extras:
    """nginx figures and ministry's 1 GiB upload."""

    nginx_page: Load | None = None
    nginx_file: Load | None = None
    proxied_page: Load | None = None
    proxied_file: Load | None = None
    accel_file: Load | None = None
    stub_file: Load | None = None
    #: The project page at 100 projects and at the largest size, side by side.
    page_small: Load | None = None
    page_big: Load | None = None
    big_before_mb: float = math.nan
    big_peak_mb: float = math.nan
    big_seconds: float = math.nan
    big_status: str = ""
    big_samples: int = 0
    nginx_version: str = ""


def loadavg() -> str:
    """The 1-minute load average: how busy the shared machine was."""
    return Path("/proc/loadavg").read_text().split()[0]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def file_url(server: Server, project: str) -> str:
    """The absolute URL of the first file linked from ``project``'s simple page."""
    page_url = f"{server.simple_url}{project}/"
    status, body = http_get(page_url)
    if status != 200:
        raise RuntimeError(f"{page_url}: {status}")
    href = re.search(rb'href="([^"#]+)', body)
    if href is None:
        raise RuntimeError(f"{page_url}: no link in {body[:300]!r}")
    return urllib.parse.urljoin(page_url, href.group(1).decode())


def serves_json(url: str) -> bool:
    """Whether ``url`` answers PEP 691 JSON when asked for it."""
    response = http_request("GET", url, {"Accept": JSON_ACCEPT})
    return response.status == 200 and "json" in (response.getheader("Content-Type") or "")


def measure_pages(server: Server, seconds: int) -> dict[str, Load]:
    """wrk on the index root, one project page (HTML, JSON) and the 1 MB file."""
    project = f"{server.simple_url}{PAGE_PROJECT}/"
    one_meg = file_url(server, ONE_MEG_PROJECT)
    targets: list[tuple[str, str, str | None]] = [
        ("/simple/", server.simple_url, None),
        ("/simple/<project>/ HTML", project, None),
    ]
    if serves_json(project):
        targets.append(("/simple/<project>/ JSON", project, JSON_ACCEPT))
    targets.append(("1 MB file", one_meg, None))
    pages = {}
    for name, url, accept in targets:
        http_get(url, {"Accept": accept} if accept else None, timeout=120)  # warm any cache
        load = wrk(url, CONNECTIONS, seconds, accept=accept, timeout=WRK_TIMEOUT)
        log(
            f"  {server.label} {name}: {load.requests_per_second:,.0f} req/s "
            f"p50 {load.p50_ms:.1f} ms p99 {load.p99_ms:.1f} ms "
            f"errors {load.errors}+{load.socket_errors}"
        )
        pages[name] = load
    return pages


def twine_upload(server: Server, dists: list[Dist], home: Path) -> float:
    """Seconds for one ``twine upload`` of ``dists`` (a separate process, as users run it)."""
    command = [
        sys.executable,
        "-m",
        "twine",
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
    ]
    command += ["--repository-url", server.upload_url]
    command += ["-u", server.twine_user, "-p", server.twine_password]
    command += [str(d.path) for d in dists]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=client_env(home))
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"twine upload to {server.label} failed:\n{done.stdout}{done.stderr}")
    return seconds


def pip_install(server: Server, scratch: Path) -> float:
    """Seconds for ``pip install`` of one project into a throwaway target, no cache."""
    target = Path(tempfile.mkdtemp(dir=scratch))
    command = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps", "--quiet"]
    command += ["--only-binary", ":all:", "--target", str(target)]
    command += ["--index-url", server.simple_url, PIP_INSTALL_PROJECT]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=client_env(scratch / "home"))
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"pip install from {server.label} failed:\n{done.stdout}{done.stderr}")
    return seconds


def run_server(
    server: Server,
    result: ServerResult,
    plan: Plan,
    sizes: Iterable[int],
    real: list[Dist],
    twine_files: list[Dist],
    scratch: Path,
    at_shared_top: Callable[[Server], None] | None = None,
    at_top: Callable[[Server], None] | None = None,
) -> None:
    """Load and measure one server through its sizes (see the module docstring)."""
    log(f"{server.label}: starting")
    server.start()
    result.real_load = server.load_dists(real)
    _check(result.real_load, f"{server.label}: real corpus")
    loaded = 0
    for size in sizes:
        log(f"{server.label}: loading synthetic projects {loaded:,} -> {size:,}")
        loaded_now = server.load_synthetic(
            synthetic_jobs(loaded, size - loaded), connections=8, progress_every=30_000
        )
        _check(loaded_now, f"{server.label}: synthetic corpus")
        loaded = size
        here = result.sizes[size] = SizeResult(size, loaded_now)
        log(
            f"{server.label}: {loaded_now.count:,} files in {loaded_now.seconds:.1f} s "
            f"({loaded_now.per_second:,.0f}/s); restarting"
        )
        server.stop()
        # Loading leaves the kernel gigabytes of dirty pages to write back for
        # a minute after; flushed first, they do not slow what is timed next.
        os.sync()
        here.startup_s = median_startup(server)
        here.rss_start_mb = rss_mb(server.pid)
        here.hwm_start_mb = status_kib(server.pid, "VmHWM") * 1024 / 1e6
        log(f"{server.label}: first answer {here.startup_s:.2f} s, RSS {here.rss_start_mb:.0f} MB")
        here.pages = measure_pages(server, plan.seconds)
        here.rss_after_mb = rss_mb(server.pid)
        here.hwm_mb = status_kib(server.pid, "VmHWM") * 1024 / 1e6
        if size == plan.shared_top:
            uploads_and_installs(server, result, plan, twine_files, scratch)
            if at_shared_top is not None:
                at_shared_top(server)
    if at_top is not None:
        at_top(server)
    server.stop()


def uploads_and_installs(
    server: Server, result: ServerResult, plan: Plan, twine_files: list[Dist], scratch: Path
) -> None:
    """twine's 20 real files, the small-upload rate, one pip install."""
    result.twine_s = twine_upload(server, twine_files, scratch / f"home-{server.label}")
    log(f"{server.label}: twine upload of {len(twine_files)} files {result.twine_s:.2f} s")
    jobs = ((f"rate-{n:06d}", "1.0") for n in range(plan.rate_uploads))
    result.upload_rate = server.upload_synthetic(jobs, connections=8, max_seconds=60)
    _check(result.upload_rate, f"{server.label}: upload rate")
    log(
        f"{server.label}: {result.upload_rate.per_second:,.0f} small uploads/s over 8 "
        f"connections ({result.upload_rate.count} uploads)"
    )
    if isinstance(server, Devpi):
        # As twine authenticates: HTTP Basic, the password checked on every request.
        jobs = ((f"rate-basic-{n:06d}", "1.0") for n in range(40))
        result.upload_rate_basic = upload_many(
            server.upload_url,
            jobs,
            _synthetic_upload,
            connections=8,
            headers=server.basic_headers(),
            max_seconds=30,
        )
        _check(result.upload_rate_basic, "devpi: Basic-auth uploads")
        log(f"devpi: {result.upload_rate_basic.per_second:,.1f} uploads/s with Basic auth")
    result.pip_install_s = pip_install(server, scratch)
    log(f"{server.label}: pip install {PIP_INSTALL_PROJECT} {result.pip_install_s:.2f} s")


def _check(result: UploadResult, what: str) -> None:
    if result.failures:
        raise RuntimeError(
            f"{what}: {result.failures} of {result.count} uploads refused, e.g. "
            f"{result.sample_failure}"
        )


#: ministry's option for handing file delivery to nginx; measured when
#: ``twistd ministry --help`` lists it (so older checkouts can be compared).
ACCEL_OPTION = "--x-accel-redirect"
ACCEL_PREFIX = "/_ministry/"
#: Behind nginx, nginx keeps the access log (here, like nginx alone: none).
QUIET_OPTION = ("--access-log", "off")
#: The file ceiling and X-Accel-Redirect are measured this many times each,
#: alternately, and the median kept: on two shared cores one 10 s figure of
#: either moves by ±10% from run to run, as much as the margin of the target.
FILE_ROUNDS = 3


def ministry_help(ministry: Ministry) -> str:
    """``twistd ministry --help`` of this checkout: which options it has."""
    command = [*ministry.command()[:3], "ministry", "--help"]
    return subprocess.run(command, capture_output=True, text=True, env=ministry.env()).stdout


def accel_location(url: str) -> str:
    """The ``X-Accel-Redirect`` a ministry with the option answers ``url`` with."""
    return http_request("HEAD", url).headers["X-Accel-Redirect"]


def median_load(loads: list[Load]) -> Load:
    """The figure with the median requests per second."""
    return sorted(loads, key=lambda load: load.requests_per_second)[len(loads) // 2]


def nginx_figures(ministry: Ministry, extras: Extras, plan: Plan, work: Path) -> None:
    """nginx alone on ministry's page and file, then nginx in front of ministry.

    In front: plain ``proxy_pass`` (ministry sends the bytes through nginx),
    and, when ministry has the option, a second ministry process on the
    same data directory answering file requests with ``X-Accel-Redirect``
    so that nginx sends the file from ministry's blob directory itself.
    The same redirect from a stub backend that costs nothing (nginx itself)
    shows what the technique can reach on this machine at all.
    """
    page_url = f"{ministry.simple_url}{PAGE_PROJECT}/"
    one_meg = file_url(ministry, ONE_MEG_PROJECT)
    _, page = http_get(page_url)
    _, blob = http_get(one_meg)
    file_path = urllib.parse.urlsplit(one_meg).path
    with contextlib.ExitStack() as stack:
        proxies = {"/proxied/": ministry.address}
        internal: dict[str, Path] = {}
        stub = None
        options = ministry_help(ministry)
        if ACCEL_OPTION in options:
            quiet = QUIET_OPTION if QUIET_OPTION[0] in options else ()
            accel = stack.enter_context(
                Ministry(
                    work / "ministry-accel",
                    ACCEL_OPTION,
                    ACCEL_PREFIX,
                    *quiet,
                    data_dir=ministry.daemon.data_dir,
                    unix_socket=work / "ministry-accel.sock",
                )
            )
            accel.start()
            proxies["/accel/"] = accel.address
            internal[ACCEL_PREFIX] = ministry.daemon.data_dir
            stub = accel_location(accel.base + file_path)
        else:
            log(f"  ministry has no {ACCEL_OPTION} option: X-Accel-Redirect not measured")
        nginx = stack.enter_context(
            Nginx(work / "nginx", proxies=proxies, internal=internal, accel_stub=stub)
        )
        nginx.start(timeout=30)
        extras.nginx_version = subprocess.run(
            [nginx.command()[0], "-v"], capture_output=True, text=True
        ).stderr.strip()
        targets = [
            ("static page", nginx.put(f"/simple/{PAGE_PROJECT}/", page), "nginx_page"),
            ("proxied page", f"{nginx.base}/proxied/simple/{PAGE_PROJECT}/", "proxied_page"),
            ("proxied 1 MB file", f"{nginx.base}/proxied{file_path}", "proxied_file"),
        ]
        rounds = [("static 1 MB file", nginx.put(file_path, blob), "nginx_file")]
        if internal:
            rounds.append(("X-Accel 1 MB file", f"{nginx.base}/accel{file_path}", "accel_file"))
            rounds.append(("X-Accel from a stub", f"{nginx.base}/stub{file_path}", "stub_file"))
        for name, url, attr in targets + rounds:
            status, body = http_get(url)
            if status != 200 or (attr.endswith("file") and body != blob):
                raise RuntimeError(f"nginx {name}: {status}, {len(body)} bytes")
        for name, url, attr in targets:
            setattr(extras, attr, _logged_load(f"nginx {name}", url, plan.seconds))
        measured: dict[str, list[Load]] = {attr: [] for _, _, attr in rounds}
        for _ in range(FILE_ROUNDS):
            for name, url, attr in rounds:
                measured[attr].append(_logged_load(f"nginx {name}", url, plan.seconds))
        for attr, loads in measured.items():
            setattr(extras, attr, median_load(loads))


def _logged_load(label: str, url: str, seconds: int) -> Load:
    """One wrk figure of the side-by-side comparisons, logged as it is taken."""
    load = wrk(url, CONNECTIONS, seconds, timeout=WRK_TIMEOUT)
    log(
        f"  {label}: {load.requests_per_second:,.0f} req/s "
        f"p99 {load.p99_ms:.1f} ms errors {load.errors}+{load.socket_errors}"
    )
    return load


def median_startup(server: Server, times: int = 3) -> float:
    """Seconds from start to first answer, the median of ``times`` restarts (left running)."""
    seconds = []
    for _ in range(times):
        server.stop()
        seconds.append(server.start())
    return sorted(seconds)[times // 2]


def page_scaling(big: Server, extras: Extras, plan: Plan, work: Path) -> None:
    """The project page of the grown ministry against a second one holding 100 projects.

    Both run side by side and are loaded in turn, ``FILE_ROUNDS`` times each:
    a figure taken half an hour earlier, before the growth, moves by as much
    as the 10% the target allows on this shared machine.
    """
    url = f"{PAGE_PROJECT}/"
    with Ministry(work / "ministry-100") as small:
        small.start()
        _check(small.load_synthetic(synthetic_jobs(0, 100)), "ministry-100: corpus")
        os.sync()
        for server in (small, big):
            http_get(server.simple_url + url)  # rendered once, then cached
        loads: dict[str, list[Load]] = {"small": [], "big": []}
        for _ in range(FILE_ROUNDS):
            for name, server in (("small", small), ("big", big)):
                label = f"ministry page, {name}"
                loads[name].append(_logged_load(label, server.simple_url + url, plan.seconds))
    extras.page_small = median_load(loads["small"])
    extras.page_big = median_load(loads["big"])


def big_upload(ministry: Ministry, extras: Extras) -> None:
    """ministry's resident memory before and at its peak while a 1 GiB wheel is uploaded."""
    log("ministry: preparing the 1 GiB wheel (cached after the first run)")
    dist = big_wheel()
    ministry.stop()
    ministry.start()
    with RssSampler(ministry.pid, hz=20) as sampler:
        status, body, seconds = stream_upload(ministry.upload_url, dist)
    extras.big_before_mb = sampler.before_mb
    extras.big_peak_mb = sampler.peak_mb
    extras.big_seconds = seconds
    extras.big_status = f"{status} {body.strip()[:80]}"
    extras.big_samples = len(sampler.samples)
    log(
        f"ministry: 1 GiB upload {status} in {seconds:.1f} s; RSS {sampler.before_mb:.0f} MB "
        f"before, {sampler.peak_mb:.0f} MB peak"
    )


# --- the report ---------------------------------------------------------------


def _rate(load: Load | None) -> str:
    return "-" if load is None else f"{load.requests_per_second:,.0f}"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _ratio(a: float, b: float) -> str:
    return "-" if not a or not b or math.isnan(a) or math.isnan(b) else f"{a / b:.1f}x"


def _errors(load: Load | None) -> str:
    if load is None or not (load.errors or load.socket_errors):
        return ""
    return f" ⚠{load.errors + load.socket_errors}"


def report(
    plan: Plan, results: dict[str, ServerResult], extras: Extras, context: dict[str, str]
) -> str:
    """The Markdown document: context, four tables, the targets."""
    ministry = results.get("ministry")
    devpi = results.get("devpi")
    pypiserver = results.get("pypiserver")
    lines = [
        "# ministry against its peers",
        "",
        f"`python bench/peers.py{' --quick' if plan.quick else ''}` — {context['when']}, "
        f"{context['machine']}.",
        "",
        f"Servers: {context['versions']}. One process each, on loopback, run one at a time. "
        f"Load: wrk, 1 thread, {CONNECTIONS} connections, {plan.seconds} s per figure, "
        f"timeout {WRK_TIMEOUT} s. Corpus: {context['real']} real files "
        f"(`pip download`) + a 1 MB wheel + N synthetic projects x 3 wheels. "
        f"Load average {context['load_before']} before, {context['load_after']} after "
        "(the machine is shared: other engineers' tests run alongside).",
        "",
        "## Requests per second (p99 ms)",
        "",
        "| projects | endpoint | ministry | devpi | pypiserver | ministry/devpi | "
        "ministry/pypiserver |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    all_sizes = sorted({s for r in results.values() for s in r.sizes})
    endpoints = ("/simple/", "/simple/<project>/ HTML", "/simple/<project>/ JSON", "1 MB file")
    for size in all_sizes:
        for endpoint in endpoints:
            cells = []
            loads = []
            for who in (ministry, devpi, pypiserver):
                load = who.sizes[size].pages.get(endpoint) if who and size in who.sizes else None
                loads.append(load)
                cells.append(
                    "-" if load is None else f"{_rate(load)} ({_ms(load.p99_ms)}){_errors(load)}"
                )
            if not any(loads):
                continue
            m, d, p = (x.requests_per_second if x else math.nan for x in loads)
            lines.append(
                f"| {size:,} | {endpoint} | {' | '.join(cells)} | {_ratio(m, d)} | {_ratio(m, p)} |"
            )
    if extras.nginx_page:
        top = plan.shared_top
        m_page = ministry.sizes[top].pages["/simple/<project>/ HTML"] if ministry else None
        m_file = ministry.sizes[top].pages["1 MB file"] if ministry else None
        lines += [
            "",
            f"nginx ({extras.nginx_version.replace('nginx version: ', '')}, 1 worker) on the same "
            f"bytes as ministry's at {top:,} projects:",
            "",
            "| what | requests/s (p99 ms) | ministry direct | ministry / nginx |",
            "|---|---:|---:|---:|",
            f"| project page, static | {_rate(extras.nginx_page)} "
            f"({_ms(extras.nginx_page.p99_ms)}) | {_rate(m_page)} | "
            f"{_pct(m_page, extras.nginx_page)} |",
            f"| 1 MB file, static | {_rate(extras.nginx_file)} "
            f"({_ms(extras.nginx_file.p99_ms)}) | {_rate(m_file)} | "
            f"{_pct(m_file, extras.nginx_file)} |",
            f"| project page, nginx → ministry (proxy_pass) | {_rate(extras.proxied_page)} "
            f"({_ms(extras.proxied_page.p99_ms)}) | | "
            f"{_pct(extras.proxied_page, extras.nginx_page)} |",
            f"| 1 MB file, nginx → ministry (proxy_pass, no X-Accel-Redirect) | "
            f"{_rate(extras.proxied_file)} ({_ms(extras.proxied_file.p99_ms)}) | | "
            f"{_pct(extras.proxied_file, extras.nginx_file)} |",
        ]
        if extras.accel_file and extras.stub_file:
            lines += [
                f"| 1 MB file, nginx → ministry with X-Accel-Redirect | "
                f"{_rate(extras.accel_file)} ({_ms(extras.accel_file.p99_ms)}) | | "
                f"{_pct(extras.accel_file, extras.nginx_file)} |",
                f"| 1 MB file, nginx → a stub answering X-Accel-Redirect at no cost | "
                f"{_rate(extras.stub_file)} ({_ms(extras.stub_file.p99_ms)}) | | "
                f"{_pct(extras.stub_file, extras.nginx_file)} |",
                "",
                f"The static file and both X-Accel-Redirect rows are medians of {FILE_ROUNDS} "
                "alternating rounds; ministry behind nginx runs with `--access-log off` "
                "(nginx keeps the log).",
            ]
    lines += [
        "",
        "## Start-up and memory",
        "",
        "| server | projects | files loaded | load time | first answer after start | "
        "RSS after start (high-water) | RSS after the wrk runs (high-water) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for who in (ministry, devpi, pypiserver):
        if who is None:
            continue
        for size, here in sorted(who.sizes.items()):
            loaded = here.load
            how = "copied" if who.label == "pypiserver" else "uploaded"
            lines.append(
                f"| {who.label} | {size:,} | {loaded.count if loaded else 0:,} {how} | "
                f"{loaded.seconds if loaded else 0:.1f} s "
                f"({loaded.per_second if loaded else 0:,.0f}/s) | {here.startup_s:.2f} s | "
                f"{here.rss_start_mb:.0f} MB ({here.hwm_start_mb:.0f}) | "
                f"{here.rss_after_mb:.0f} MB ({here.hwm_mb:.0f}) |"
            )
    lines += [
        "",
        "## Uploads and installs",
        "",
        f"| server | twine upload, 20 real files | small uploads ({plan.rate_uploads} or 60 s), "
        f"8 connections | pip install {PIP_INSTALL_PROJECT} (no cache) |",
        "|---|---:|---:|---:|",
    ]
    for who in (ministry, devpi, pypiserver):
        if who is None or who.upload_rate is None:
            continue
        rate = f"{who.upload_rate.per_second:,.0f}/s"
        if who.upload_rate_basic is not None:
            rate += (
                f" (token auth; {who.upload_rate_basic.per_second:,.1f}/s with Basic auth, "
                "as twine sends)"
            )
        lines.append(f"| {who.label} | {who.twine_s:.2f} s | {rate} | {who.pip_install_s:.2f} s |")
    if not math.isnan(extras.big_peak_mb):
        lines += [
            "",
            "## ministry: a 1 GiB upload",
            "",
            f"RSS {extras.big_before_mb:.0f} MB before, {extras.big_peak_mb:.0f} MB at the "
            f"peak ({extras.big_samples} samples at 20 Hz): "
            f"+{extras.big_peak_mb - extras.big_before_mb:.0f} MB; "
            f"{extras.big_seconds:.1f} s; answer `{extras.big_status}`.",
        ]
    lines += ["", "## Targets (issue 8)", "", *targets(plan, results, extras)]
    return "\n".join(lines) + "\n"


def _pct(part: Load | None, whole: Load | None) -> str:
    if part is None or whole is None or not whole.requests_per_second:
        return "-"
    return f"{100 * part.requests_per_second / whole.requests_per_second:.0f}%"


def targets(plan: Plan, results: dict[str, ServerResult], extras: Extras) -> list[str]:
    """Every target of the issue, MET or NOT MET with its figure."""
    ministry = results.get("ministry")
    devpi = results.get("devpi")
    pypiserver = results.get("pypiserver")
    if ministry is None:
        return ["(ministry not measured)"]
    shared = plan.shared_top
    top = plan.top
    first = min(ministry.sizes)
    out: list[str] = []

    def verdict(ok: bool | None, text: str) -> None:
        word = "n/a" if ok is None else "MET" if ok else "NOT MET"
        out.append(f"- **{word}** — {text}")

    def rps(who: ServerResult | None, size: int, endpoint: str) -> float:
        if who is None or size not in who.sizes or endpoint not in who.sizes[size].pages:
            return math.nan
        return who.sizes[size].pages[endpoint].requests_per_second

    page = "/simple/<project>/ HTML"
    for endpoint in (page, "/simple/<project>/ JSON"):  # both are the project page
        m_page, d_page = rps(ministry, shared, endpoint), rps(devpi, shared, endpoint)
        p99 = ministry.sizes[shared].pages[endpoint].p99_ms
        verdict(
            None if math.isnan(d_page) else m_page >= 10 * d_page and p99 < 20,
            f"`{endpoint}` ≥ 10x devpi with p99 < 20 ms at 32 connections: "
            f"{m_page:,.0f} vs {d_page:,.0f} req/s = {_ratio(m_page, d_page)}, "
            f"p99 {p99:.1f} ms ({shared:,} projects)",
        )
    m_root, d_root = rps(ministry, shared, "/simple/"), rps(devpi, shared, "/simple/")
    verdict(
        None if math.isnan(d_root) else m_root >= 20 * d_root,
        f"`/simple/` at {shared:,} projects ≥ 20x devpi: {m_root:,.0f} vs {d_root:,.0f} req/s "
        f"= {_ratio(m_root, d_root)}",
    )
    small, large = rps(ministry, first, page), rps(ministry, top, page)
    how = "measured half an hour apart"
    if extras.page_small and extras.page_big:
        small = extras.page_small.requests_per_second
        large = extras.page_big.requests_per_second
        how = f"side by side, medians of {FILE_ROUNDS} alternating rounds"
    verdict(
        large >= 0.9 * small,
        f"project page at {top:,} projects within 10% of {first:,} projects: {large:,.0f} vs "
        f"{small:,.0f} req/s ({100 * (large / small - 1):+.0f}%, {how})",
    )
    at_top = ministry.sizes[top]
    verdict(
        at_top.startup_s < 2,
        f"start-up to first answer < 2 s at {top:,} projects: {at_top.startup_s:.2f} s",
    )
    rss = max(at_top.rss_start_mb, at_top.rss_after_mb)
    verdict(
        rss < 250,
        f"resident memory < 250 MB at {top:,} projects: {at_top.rss_start_mb:.0f} MB after "
        f"start, {at_top.rss_after_mb:.0f} MB after the wrk runs; high-water "
        f"{at_top.hwm_start_mb:.0f} MB after start, {at_top.hwm_mb:.0f} MB after the runs"
        + (" (a transient peak over 250 MB)" if at_top.hwm_mb >= 250 else ""),
    )
    added = extras.big_peak_mb - extras.big_before_mb
    verdict(
        None if math.isnan(added) else added < 64 and extras.big_status.startswith("2"),
        f"1 GiB upload adds < 64 MB of peak memory: +{added:.0f} MB "
        f"({extras.big_before_mb:.0f} → {extras.big_peak_mb:.0f} MB), answer {extras.big_status}",
    )
    if pypiserver is not None:
        verdict(
            ministry.twine_s <= pypiserver.twine_s,
            f"twine upload of 20 real files no slower than pypiserver: {ministry.twine_s:.2f} s "
            f"vs {pypiserver.twine_s:.2f} s",
        )
    rate = ministry.upload_rate.per_second if ministry.upload_rate else math.nan
    devpi_rate = devpi.upload_rate.per_second if devpi and devpi.upload_rate else math.nan
    verdict(
        rate >= 100,
        f"≥ 100 small uploads/s: {rate:,.0f}/s over 8 connections (devpi {devpi_rate:,.0f}/s "
        "with its login token"
        + (
            f", {devpi.upload_rate_basic.per_second:,.1f}/s with Basic auth"
            if devpi and devpi.upload_rate_basic
            else ""
        )
        + ")",
    )
    m_file = ministry.sizes[shared].pages["1 MB file"]
    if extras.nginx_file:
        verdict(
            m_file.requests_per_second >= 0.4 * extras.nginx_file.requests_per_second,
            f"1 MB file served directly ≥ 40% of nginx: {_pct(m_file, extras.nginx_file)} "
            f"({m_file.requests_per_second:,.0f} vs {extras.nginx_file.requests_per_second:,.0f} "
            "req/s)",
        )
        if extras.accel_file is None:
            verdict(
                False,
                "behind nginx with X-Accel-Redirect ≥ 90% of nginx alone: ministry has no "
                f"{ACCEL_OPTION} option yet; plain proxy_pass gives "
                f"{_pct(extras.proxied_file, extras.nginx_file)} of nginx alone",
            )
        else:
            accel_rps = extras.accel_file.requests_per_second
            verdict(
                accel_rps >= 0.9 * extras.nginx_file.requests_per_second,
                "behind nginx with X-Accel-Redirect ≥ 90% of nginx alone: "
                f"{_pct(extras.accel_file, extras.nginx_file)} ({accel_rps:,.0f} vs "
                f"{extras.nginx_file.requests_per_second:,.0f} req/s)",
            )
    return out


# --- main ---------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 5,000 projects, 5 s")
    parser.add_argument("--seconds", type=int, help="wrk duration per figure")
    parser.add_argument(
        "--only",
        default="ministry,devpi,pypiserver,nginx,big",
        help="comma-separated subset of ministry,devpi,pypiserver,nginx,big",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    compile_checkout()
    plan = Plan(
        sizes=(100, 1_000) if args.quick else (100, 10_000),
        ministry_sizes=(5_000,) if args.quick else (100_000,),
        seconds=args.seconds or (5 if args.quick else 10),
        rate_uploads=300 if args.quick else 1_000,
        quick=args.quick,
    )
    context = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "load_before": loadavg(),
    }
    log("virtual environments")
    bins = {name: ensure_venv(name) for name in PEERS if name in only}
    versions = {"ministry": "this checkout"}
    if "devpi" in bins:
        versions["devpi"] = (
            "devpi-server " + venv_versions(bins["devpi"], ["devpi-server"])["devpi-server"]
        )
    if "pypiserver" in bins:
        found = venv_versions(bins["pypiserver"], ["pypiserver", "waitress"])
        versions["pypiserver"] = f"pypiserver {found['pypiserver']} (waitress {found['waitress']})"
    log("corpus")
    real = real_corpus()
    twine_files = twine_set(real)
    rest = [d for d in real if d not in twine_files] + [one_meg_wheel()]
    context["real"] = str(len(real))
    context["versions"] = ", ".join(f"{k}: {v}" for k, v in versions.items())
    results: dict[str, ServerResult] = {}
    extras = Extras()
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="peers-", dir=CACHE) as scratch_name:
        scratch = Path(scratch_name)
        # nginx's workers run as an unprivileged user when started as root:
        # they must be able to walk into the scratch directory.
        scratch.chmod(0o755)
        if "ministry" in only:
            result = results["ministry"] = ServerResult("ministry")
            with Ministry(scratch / "ministry", "--max-upload-size", "2G") as ministry:

                def ceiling(server: Server) -> None:
                    if "nginx" in only:
                        nginx_figures(ministry, extras, plan, scratch)

                run_server(
                    ministry,
                    result,
                    plan,
                    plan.sizes + plan.ministry_sizes,
                    rest,
                    twine_files,
                    scratch,
                    at_shared_top=ceiling,
                    at_top=lambda server: page_scaling(server, extras, plan, scratch),
                )
                if "big" in only:
                    big_upload(ministry, extras)
        for name, factory in (("devpi", Devpi), ("pypiserver", Pypiserver)):
            if name not in only:
                continue
            result = results[name] = ServerResult(name)
            with factory(scratch / name, bins[name]) as server:
                run_server(server, result, plan, plan.sizes, rest, twine_files, scratch)
    context["load_after"] = loadavg()
    text = report(plan, results, extras, context)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()

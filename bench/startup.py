"""Start-up and memory at a large number of projects (issue 17, target 5).

    python bench/startup.py [--projects 100000] [--restarts 3] [--seconds 10] [--profile]

``bench/peers.py`` measures the same figures beside the peers, but it
loads its corpus over HTTP (about 40 minutes for 100,000 projects on this
machine) and throws it away. This one keeps a loaded data directory under
``bench/.cache/startup-<N>`` and measures only what the target names, so a
change to start-up can be tried in minutes:

1. once per size: writes an export of ``--projects`` synthetic projects of 3
   wheels each (the same names and bytes as ``peers.py``'s) and loads it with
   ``ministry-admin import``, which claims every file through the store's
   normal ``add_file``, as an upload does;
2. starts ``twistd -n ministry`` on it once with no saved index pages (as
   after a crash: ``ministry.web.saved_index``), then ``--restarts`` times
   after a clean stop: seconds to the first answer on ``/simple/`` (median),
   the resident memory right after;
3. loads ``/simple/`` and one project page (HTML and JSON) with wrk, 32
   connections, asks for the browser's project list once (every project
   read into memory), and reads the resident memory and its high-water mark.

With ``--profile``, one more start is recorded by py-spy (``--gil``: the
thread holding the GIL, which is what a start waits for) into
``bench/results/startup-profile.txt`` (``profile_page.shares``).
Writes bench/results/startup.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from common import JSON_ACCEPT, REPO, compile_checkout, publish, wrk
from corpus import CACHE, synthetic_jobs, synthetic_wheel
from load import rss_mb, status_kib
from profile_page import shares
from servers_peer import Ministry, http_get

from ministry.core.models import WHEEL, FileRecord, ProjectRecord

RESULTS = REPO / "bench" / "results"
PAGE = "bench-000042"
#: The target: first answer and resident memory at 100,000 projects.
FIRST_ANSWER_S = 2.0
RSS_MB = 250.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def write_export(directory: Path, projects: int) -> None:
    """An export (``ministry.admin.transfer``'s layout) of the synthetic corpus."""
    files = directory / "files"
    files.mkdir(parents=True)
    now = datetime.now(UTC)
    with (
        open(directory / "projects.jsonl", "w") as project_lines,
        open(directory / "files.jsonl", "w") as file_lines,
    ):
        seen: set[str] = set()
        for name, version in synthetic_jobs(0, projects):
            filename, data = synthetic_wheel(name, version)
            with zipfile.ZipFile(io.BytesIO(data)) as wheel:
                metadata = wheel.read(f"{name.replace('-', '_')}-{version}.dist-info/METADATA")
            record = FileRecord(
                project=name,
                filename=filename,
                version=version,
                packagetype=WHEEL,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                blake2b_256=hashlib.blake2b(data, digest_size=32).hexdigest(),
                md5=hashlib.md5(data).hexdigest(),
                upload_time=now,
                python_version="py3",
                metadata_sha256=hashlib.sha256(metadata).hexdigest(),
            )
            target = files / record.blob_key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            line = {"record": record.to_dict(), "metadata": base64.b64encode(metadata).decode()}
            file_lines.write(json.dumps(line) + "\n")
            if name not in seen:  # no "summary": the import takes it from the metadata
                seen.add(name)
                project = ProjectRecord(name, name, 0, now).to_dict()
                del project["summary"]
                project_lines.write(json.dumps(project) + "\n")


def loaded_data(projects: int) -> Path:
    """The data directory holding ``projects`` projects, made once and kept."""
    home = CACHE / f"startup-{projects}"
    data, done = home / "data", home / "loaded"
    if done.exists():
        return data
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        export = Path(scratch) / "export"
        started = time.perf_counter()
        write_export(export, projects)
        log(f"export of {projects:,} projects written in {time.perf_counter() - started:.0f} s")
        if data.exists():
            subprocess.run(["rm", "-rf", str(data)], check=True)
        data.mkdir(parents=True)
        started = time.perf_counter()
        command = [sys.executable, "-m", "ministry.admin", "--data-dir", str(data)]
        subprocess.run([*command, "import", str(export)], check=True)
        seconds = time.perf_counter() - started
    done.write_text(f"{projects * 3} files imported in {seconds:.0f} s\n")
    log(done.read_text().strip())
    return data


def first_answers(server: Ministry, restarts: int) -> tuple[tuple[float, float], float, float]:
    """The first answer of a start with no saved index pages (seconds, RSS MB
    right after), then the median of ``restarts`` restarts after a clean stop
    (seconds, RSS MB); left running."""
    seconds, rss = [], []
    for restart in range(restarts + 1):
        server.stop()
        if restart == 0:  # as after a crash: the index is rendered from the store
            shutil.rmtree(server.daemon.data_dir / "pages", ignore_errors=True)
        os.sync()
        seconds.append(server.start())
        rss.append(rss_mb(server.pid))
        log(f"first answer {seconds[-1]:.2f} s, RSS {rss[-1]:.0f} MB")
    cold = (seconds[0], rss[0])
    return cold, sorted(seconds[1:])[restarts // 2], sorted(rss[1:])[restarts // 2]


def profile_start(server: Ministry, output: Path) -> None:
    """One start recorded by py-spy, until the first answer."""
    server.stop()
    spy = Path(sys.executable).parent / "py-spy"
    command = [str(spy), "record", "--gil", "--format", "raw", "-r", "200", "-o", str(output)]
    recorder = subprocess.Popen(
        [*command, "--", *server.command()],
        env=server.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if http_get(server.simple_url, timeout=5)[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
    finally:
        recorder.send_signal(2)
        recorder.wait(120)
    output.with_suffix(".txt").write_text(shares(output) + "\n")
    log(f"profile: {output.with_suffix('.txt')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    data = loaded_data(args.projects)
    compile_checkout()
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        server = Ministry(Path(scratch), data_dir=data)
        try:
            if args.profile:
                profile_start(server, RESULTS / "startup-profile.folded")
            cold, first, rss_start = first_answers(server, args.restarts)
            loads = {}
            for label, url, accept in (
                ("/simple/", server.simple_url, None),
                ("/simple/<project>/ HTML", f"{server.simple_url}{PAGE}/", None),
                ("/simple/<project>/ JSON", f"{server.simple_url}{PAGE}/", JSON_ACCEPT),
            ):
                http_get(url, {"Accept": accept} if accept else None, timeout=120)
                loads[label] = wrk(url, 32, args.seconds, accept=accept, timeout=10)
                log(f"{label}: {loads[label].requests_per_second:,.0f} req/s")
            # Every project in memory too, as a browser's project list and search need them.
            http_get(f"{server.base}/projects/?q=bench-0999", timeout=120)
            rss_after = rss_mb(server.pid)
            hwm = status_kib(server.pid, "VmHWM") * 1024 / 1e6
        finally:
            server.stop()
    slowest, most = max(first, cold[0]), max(hwm, cold[1])
    verdict = "met" if slowest < FIRST_ANSWER_S and most < RSS_MB else "NOT met"
    lines = [
        f"# Start-up and memory at {args.projects:,} projects",
        "",
        f"`python bench/startup.py --projects {args.projects}`, "
        f"load average {Path('/proc/loadavg').read_text().split()[0]} at the end.",
        "",
        f"- first answer (median of {args.restarts} restarts): **{first:.2f} s**; "
        f"with no saved index pages (as after a crash): {cold[0]:.2f} s, RSS {cold[1]:.0f} MB "
        "(every project read and rendered)",
        f"- RSS after start: **{rss_start:.0f} MB**; after the loads {rss_after:.0f} MB, "
        f"high-water **{hwm:.0f} MB**",
        *(
            f"- {label}: {load.requests_per_second:,.0f} req/s, p99 {load.p99_ms:.1f} ms"
            for label, load in loads.items()
        ),
        f"- target (first answer < {FIRST_ANSWER_S:.0f} s, RSS < {RSS_MB:.0f} MB): **{verdict}**",
        "",
    ]
    publish(lines, "startup.md")


if __name__ == "__main__":
    main()

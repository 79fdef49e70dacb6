"""Where ministry spends its time on ``/simple/<project>/`` (or a file) under load.

    python bench/profile_page.py [--projects 1000] [--seconds 15]
                                 [--target html|json|index|file|accel]

Starts ministry, seeds it with synthetic projects, loads one project page
with wrk (32 connections) and samples the daemon with py-spy meanwhile
(``pip install py-spy``; it needs ptrace rights, as root or with
CAP_SYS_PTRACE). Writes a flame graph and the collapsed stacks to
bench/results/, and prints the functions with the largest shares of
samples, by self time and inclusive time, so hot spots can be compared
between commits without opening the SVG.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

from common import JSON_ACCEPT, REPO, Load, seed, wrk
from corpus import ONE_MEG_PROJECT, PAGE_PROJECT, one_meg_wheel
from load import dist_upload, upload_many
from servers import MinistryProcess

RESULTS = REPO / "bench" / "results"


def py_spy(pid: int, seconds: int, output: Path, fmt: str) -> subprocess.Popen[bytes]:
    """Start ``py-spy record`` on ``pid`` (GIL-holding and idle threads both kept out)."""
    command = ["py-spy", "record", "--pid", str(pid), "--duration", str(seconds)]
    command += ["--rate", "200", "--format", fmt, "--output", str(output), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def shares(folded: Path, top: int = 25, below: float = 0.6) -> str:
    """The hottest functions by self and by inclusive samples, as text tables.

    Inclusive shares above ``below`` are left out: they are the reactor and
    HTTP channel frames every request passes through, and say nothing.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += count
    lines = [f"{total} samples", "", "self %  function"]
    lines += [f"{100 * n / total:5.1f}  {name}" for name, n in own.most_common(top)]
    lines += ["", "incl %  function"]
    below_plumbing = [(name, n) for name, n in inclusive.most_common() if n < below * total]
    lines += [f"{100 * n / total:5.1f}  {name}" for name, n in below_plumbing[: top * 2]]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``render (ministry/web/simple.py:42)`` -> ``render (ministry/web/simple.py)``.

    Line numbers split one function into many rows; the module path is
    trimmed to what follows site-packages or the checkout.
    """
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", str(REPO) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument(
        "--target", choices=("html", "json", "index", "file", "accel"), default="html"
    )
    args = parser.parse_args()
    if shutil.which("py-spy") is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    RESULTS.mkdir(exist_ok=True)
    folded = RESULTS / f"profile-{args.target}.txt"
    svg = RESULTS / f"profile-{args.target}.svg"
    accept = JSON_ACCEPT if args.target == "json" else None
    extra = ("--x-accel-redirect", "/_ministry/") if args.target == "accel" else ()
    with (
        tempfile.TemporaryDirectory() as scratch,
        MinistryProcess(Path(scratch) / "data", *extra) as server,
    ):
        seed(server.url, args.projects, workers=8)
        url = f"{server.url}/simple/{PAGE_PROJECT}/"
        if args.target == "index":
            url = f"{server.url}/simple/"
        if args.target in ("file", "accel"):
            upload_many(server.url + "/", [one_meg_wheel()], dist_upload)
            wheel = one_meg_wheel().filename
            url = f"{server.url}/packages/{ONE_MEG_PROJECT}/{wheel}"
        wrk(url, seconds=2, accept=accept)  # warm up the page cache
        assert server.process is not None
        loads: list[Load] = []
        load = threading.Thread(
            target=lambda: loads.append(wrk(url, seconds=args.seconds + 2, accept=accept))
        )
        load.start()
        # One recording for the numbers, one for the picture.
        raw = py_spy(server.process.pid, args.seconds, folded, "raw")
        raw.wait()
        load.join()
        flame = threading.Thread(target=lambda: wrk(url, seconds=args.seconds, accept=accept))
        flame.start()
        picture = py_spy(server.process.pid, args.seconds - 2, svg, "flamegraph")
        picture.wait()
        flame.join()
    print(
        f"{url} ({args.target}), {args.projects} projects: "
        f"{loads[0].requests_per_second:,.0f} req/s, p99 {loads[0].p99_ms:.1f} ms under py-spy"
    )
    print(shares(folded))
    print(f"\nflame graph: {svg}\ncollapsed stacks: {folded}")


if __name__ == "__main__":
    main()

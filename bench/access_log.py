"""What the access log costs: a cached project page with each log destination (issue 17).

    python bench/access_log.py [--projects 100] [--seconds 10] [--rounds 3]

One data directory, seeded once; then, in turn and ``--rounds`` times
(alternating, medians kept, as one 10 s figure moves by about 10% here),
``twistd -n ministry`` with

- the default access log, twistd's stdout redirected to a file (how the
  tests and a systemd unit run it),
- the default access log with twistd's ``--logfile`` (how a daemonised
  twistd runs it: twistd's own rotated log file),
- ``--access-log PATH``, a file of its own,
- ``--access-log off``,

each loaded with wrk (1 thread, 32 connections) on a cached
``/simple/<project>/``. The target: every logging configuration at 70% or
more of ``off``. Each run also counts the lines its log got for that page
against the requests wrk completed: every request must have its line (a few
more lines than wrk's count are requests wrk left in flight when it stopped).
Writes bench/results/access_log.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from common import publish, seed, wrk
from servers import MinistryProcess

PAGE = "/simple/bench-000042/"


class TwistdLogfileProcess(MinistryProcess):
    """The daemon with twistd's own ``--logfile``, as a daemonised twistd writes its log."""

    def __init__(self, data_dir: Path, logfile: Path) -> None:
        super().__init__(data_dir)
        self.logfile = logfile

    def command(self) -> list[str]:
        command = super().command()
        where = command.index("ministry")
        return [*command[:where], f"--logfile={self.logfile}", *command[where:]]


@dataclass(frozen=True)
class Setting:
    name: str
    #: Where this setting's access log lines go (None: nowhere).
    log: Path | None

    def process(self, data: Path, port: int) -> MinistryProcess:
        if self.name == "default, twistd --logfile":
            server = TwistdLogfileProcess(data, self.log)
        elif self.name == "--access-log PATH":
            server = MinistryProcess(data, "--access-log", str(self.log))
        elif self.name == "--access-log off":
            server = MinistryProcess(data, "--access-log", "off")
        else:
            server = MinistryProcess(data)
        server.port = port
        return server


def lines_for(log: Path | None) -> int:
    """How many access log lines for :data:`PAGE` the file holds, with its rotated copies.

    twistd's ``--logfile`` starts a new file every megabyte (``twistd.log.1``, ...).
    """
    if log is None:
        return 0
    needle = f'"GET {PAGE} HTTP/1.1" 200'.encode()
    files = [log, *log.parent.glob(log.name + ".*")]
    return sum(path.read_bytes().count(needle) for path in files if path.exists())


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    requests_per_second: float
    #: The daemon's CPU time per request wrk completed: steadier than the
    #: rate on a shared machine, as it does not move with what else runs.
    cpu_us: float
    completed: int
    logged: int


def one_run(setting: Setting, data: Path, port: int, seconds: int) -> Run:
    """One start of one setting, loaded once."""
    with setting.process(data, port) as server:
        assert server.process is not None
        before = lines_for(setting.log)
        urllib.request.urlopen(server.url + PAGE).read()  # rendered once, cached after
        cpu = cpu_seconds(server.process.pid)
        load = wrk(server.url + PAGE, seconds=seconds)
        time.sleep(1)  # the last batch goes out at the end of its turn
        cpu = cpu_seconds(server.process.pid) - cpu
        logged = lines_for(setting.log) - before - 1
    return Run(load.requests_per_second, 1e6 * cpu / load.requests, load.requests, logged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(scratch)
        data = where / "data"
        with MinistryProcess(data) as server:
            seed(server.url, args.projects)
            port = server.port
        settings = [
            Setting("default, stdout to a file", data / "ministry.log"),
            Setting("default, twistd --logfile", where / "twistd.log"),
            Setting("--access-log PATH", where / "access.log"),
            Setting("--access-log off", None),
        ]
        runs: dict[str, list[Run]] = {s.name: [] for s in settings}
        for _ in range(args.rounds):
            for setting in settings:
                runs[setting.name].append(one_run(setting, data, port, args.seconds))
    off = runs["--access-log off"]
    off_rate = statistics.median(r.requests_per_second for r in off)
    off_cpu = statistics.median(r.cpu_us for r in off)
    lines = [
        f"Cached `{PAGE}` (HTML), {args.projects} projects x 3 wheels, wrk 1 thread, "
        f"32 connections, {args.seconds} s; median of {args.rounds} alternating rounds. "
        "Throughput of `off` = CPU per request of `off` / that of the setting.",
        "",
        "| access log | req/s (median) | runs | of `off` | CPU µs/request | "
        "throughput of `off` by CPU | requests without a line |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for setting in settings:
        mine = runs[setting.name]
        rate = statistics.median(r.requests_per_second for r in mine)
        cpu = statistics.median(r.cpu_us for r in mine)
        each = ", ".join(f"{r.requests_per_second:,.0f}" for r in mine)
        by_cpu = off_cpu / cpu
        if setting.log is None:
            lost, met = "-", ""
        else:
            lost = str(sum(max(0, r.completed - r.logged) for r in mine))
            met = " (met)" if by_cpu >= 0.7 else " (NOT met)"
        lines.append(
            f"| {setting.name} | {rate:,.0f} | {each} | {rate / off_rate:.0%} | {cpu:.1f} | "
            f"{by_cpu:.0%}{met} | {lost} |"
        )
    publish(lines, "access_log.md")


if __name__ == "__main__":
    main()

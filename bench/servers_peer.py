"""The servers under comparison, behind one small interface.

ministry (tests/servers.py ``MinistryProcess``), pypiserver, devpi-server
(as an index, and as a mirror of an upstream) and proxpi from their own
virtual environments under bench/.cache/venvs, and nginx as the static
ceiling. Each is a real process on a loopback port; what differs
is how it is installed, initialised, loaded and addressed, and that is all
this module knows. Every class times its own start-up to the first 200 on
its simple index, polling every 10 ms, because "time to first answer" is
one of the figures compared.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from corpus import CACHE, Dist, synthetic_wheel
from load import UploadResult, dist_upload, synthetic_upload, upload_many
from servers import MinistryProcess, free_port

VENVS = CACHE / "venvs"

#: What each peer's virtual environment holds. pypiserver gets waitress (its
#: documented production server, picked by ``--server auto``) and watchdog
#: (the ``cache`` extra: directory listings cached instead of rescanned);
#: devpi gets its client for parity with how users drive it (the harness
#: itself talks to devpi's HTTP API).
PEER_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "pypiserver": ("pypiserver[cache]", "waitress", "passlib"),
    "devpi": ("devpi-server", "devpi-client"),
    "proxpi": ("proxpi", "gunicorn"),
    "bandersnatch": ("bandersnatch",),
}


def ensure_venv(name: str) -> Path:
    """The ``bin`` directory of a peer's virtual environment, created on first use.

    Installed with the venv's own pip, so the index pip is configured with
    on this machine is the one used; a marker file records what was asked,
    and a changed list rebuilds the environment.
    """
    requirements = PEER_REQUIREMENTS[name]
    root = VENVS / name
    marker = root / ".bench-requirements"
    wanted = "\n".join(requirements) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return root / "bin"
    shutil.rmtree(root, ignore_errors=True)
    print(f"  creating {root} with {' '.join(requirements)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *requirements], check=True)
    marker.write_text(wanted)
    return root / "bin"


def venv_versions(bin_dir: Path, names: Sequence[str]) -> dict[str, str]:
    """Installed versions, for the report's header."""
    code = (
        "import importlib.metadata as m, json, sys;"
        "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    out = subprocess.run(
        [str(bin_dir / "python"), "-c", code, *names], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (``http+unix://<quoted socket path>/...``)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def http_request(
    method: str, url: str, headers: Mapping[str, str] | None = None, timeout: float = 30
) -> http.client.HTTPResponse:
    """One request to an ``http://`` or ``http+unix://`` URL; the response, body read."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http+unix":
        connection = _UnixConnection(urllib.parse.unquote(parts.netloc), timeout)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, headers=dict(headers or {}))
        response = connection.getresponse()
        response.body = response.read()
        return response
    finally:
        connection.close()


def http_get(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = 30
) -> tuple[int, bytes]:
    """(status, body) of one GET; no redirects followed, no exception on 4xx/5xx."""
    response = http_request("GET", url, headers, timeout)
    return response.status, response.body


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    """Poll ``url`` every 10 ms until it answers 200 (the caller holds the clock)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited {process.returncode}; see {log}")
        try:
            status, _ = http_get(url, timeout=max(1.0, deadline - time.perf_counter()))
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s; see {log}")


class Server:
    """A package index process: started, loaded, addressed, stopped."""

    label = "server"
    #: Whether ``/simple/<project>/`` answers PEP 691 JSON when asked.
    serves_json = True
    twine_user = "bench"
    twine_password = "bench"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = work / f"{self.label}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def simple_url(self) -> str:
        """The simple index root, with its trailing slash."""
        return f"{self.base}/simple/"

    @property
    def upload_url(self) -> str:
        return f"{self.base}/"

    def upload_headers(self) -> dict[str, str]:
        return {}

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready_url(self) -> str:
        return self.simple_url

    def start(self, timeout: float = 300.0) -> float:
        """Start the process; seconds from ``Popen`` to the first 200 on the index."""
        self.work.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            started = time.perf_counter()
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.work,
                env=self.env(),
            )
        try:
            wait_ready(self.ready_url(), self.process, timeout, self.log)
        except BaseException:
            self.stop()
            raise
        return time.perf_counter() - started

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)

    def restart(self) -> float:
        self.stop()
        return self.start()

    def load_dists(self, dists: Iterable[Dist]) -> UploadResult:
        """Put real files in: through the upload API unless said otherwise."""
        return upload_many(
            self.upload_url, dists, dist_upload, connections=4, headers=self.upload_headers()
        )

    def load_synthetic(
        self, jobs: Iterable[tuple[str, str]], connections: int = 8, progress_every: int = 0
    ) -> UploadResult:
        """Put synthetic wheels in (the bulk of every size): by upload unless said otherwise."""
        return self.upload_synthetic(jobs, connections, progress_every)

    def upload_synthetic(
        self,
        jobs: Iterable[tuple[str, str]],
        connections: int = 8,
        progress_every: int = 0,
        max_seconds: float | None = None,
    ) -> UploadResult:
        """Upload synthetic wheels through the server's upload API."""
        return upload_many(
            self.upload_url,
            jobs,
            synthetic_upload,
            connections=connections,
            headers=self.upload_headers(),
            progress_every=progress_every,
            max_seconds=max_seconds,
        )

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Ministry(Server):
    """``twistd -n ministry`` from this checkout, through ``MinistryProcess``."""

    label = "ministry"

    def __init__(
        self,
        work: Path,
        *extra: str,
        data_dir: Path | None = None,
        unix_socket: Path | None = None,
    ) -> None:
        super().__init__(work)
        self.unix_socket = unix_socket
        if unix_socket is not None:  # after the daemon's own --port: the last one counts
            extra = (*extra, "--port", f"unix:{unix_socket}:mode=666")
        self.daemon = MinistryProcess(data_dir or work / "data", *extra, port=self.port)
        self.log = self.daemon.log_path

    @property
    def base(self) -> str:
        if self.unix_socket is None:
            return super().base
        return "http+unix://" + urllib.parse.quote(str(self.unix_socket), safe="")

    @property
    def address(self) -> str:
        """Where nginx reaches it: ``127.0.0.1:PORT`` or ``unix:PATH``."""
        return f"unix:{self.unix_socket}" if self.unix_socket else f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return self.daemon.command()

    def env(self) -> dict[str, str]:
        return self.daemon._child_env()

    def start(self, timeout: float = 300.0) -> float:
        """Started as ``MinistryProcess.start`` would, but timed at 10 ms resolution."""
        self.daemon.data_dir.mkdir(parents=True, exist_ok=True)
        seconds = super().start(timeout)
        self.daemon.process = self.process
        return seconds

    def stop(self) -> None:
        self.daemon.process = None
        super().stop()


class Pypiserver(Server):
    """pypiserver over a package directory; loaded by copying files in.

    Authentication off (``-a . -P .``) and no fallback redirect, so it never
    points a client elsewhere; waitress is the server (``--server auto``
    picks it when installed, and it is what pypiserver's docs recommend; the
    log says "Serving on ... waitress").
    """

    label = "pypiserver"
    serves_json = False

    def __init__(self, work: Path, bin_dir: Path) -> None:
        super().__init__(work)
        self.bin_dir = bin_dir
        self.packages = work / "packages"
        self.packages.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            str(self.bin_dir / "pypi-server"),
            "run",
            "--port",
            str(self.port),
            "--interface",
            "127.0.0.1",
            "--authenticate",
            ".",
            "--passwords",
            ".",
            "--disable-fallback",
            "--server",
            "auto",  # bottle's AutoServer: waitress, as installed
            "--log-stream",
            "none",
            str(self.packages),
        ]

    def load_dists(self, dists: Iterable[Dist]) -> UploadResult:
        started = time.perf_counter()
        count = 0
        for dist in dists:
            shutil.copyfile(dist.path, self.packages / dist.filename)
            count += 1
        return UploadResult(count, time.perf_counter() - started)

    def load_synthetic(
        self, jobs: Iterable[tuple[str, str]], connections: int = 8, progress_every: int = 0
    ) -> UploadResult:
        started = time.perf_counter()
        count = 0
        for name, version in jobs:
            filename, data = synthetic_wheel(name, version)
            (self.packages / filename).write_bytes(data)
            count += 1
        return UploadResult(count, time.perf_counter() - started)


class Devpi(Server):
    """devpi-server with no root/pypi mirror: one user, one index with no bases.

    ``--offline-mode`` as well, so it never reaches out. Uploads use the
    token from ``/+login`` in ``X-Devpi-Auth`` (what devpi-client sends):
    with HTTP Basic auth (what twine sends) every request verifies the
    password's argon2 hash, which alone caps uploads at about 6 per second.
    """

    label = "devpi"
    user = "bench"
    index = "main"
    password = "bench-password"
    twine_user = user
    twine_password = password

    def __init__(self, work: Path, bin_dir: Path) -> None:
        super().__init__(work)
        self.bin_dir = bin_dir
        self.serverdir = work / "serverdir"
        self._created = False
        self._token: str | None = None

    @property
    def simple_url(self) -> str:
        return f"{self.base}/{self.user}/{self.index}/+simple/"

    @property
    def upload_url(self) -> str:
        return f"{self.base}/{self.user}/{self.index}/"

    def ready_url(self) -> str:
        return self.simple_url if self._created else f"{self.base}/+api"

    def command(self) -> list[str]:
        return [
            str(self.bin_dir / "devpi-server"),
            "--serverdir",
            str(self.serverdir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--offline-mode",
        ]

    def start(self, timeout: float = 300.0) -> float:
        if not (self.serverdir / ".nodeinfo").exists():
            subprocess.run(
                [
                    str(self.bin_dir / "devpi-init"),
                    "--serverdir",
                    str(self.serverdir),
                    "--no-root-pypi",
                    "--root-passwd",
                    "bench-root",
                ],
                check=True,
                capture_output=True,
            )
        seconds = super().start(timeout)
        if not self._created:
            self._create_index()
        self._token = None
        return seconds

    def _api(self, method: str, path: str, payload: object, auth: str | None = None) -> dict:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["X-Devpi-Auth"] = auth
        connection.request(method, path, body=json.dumps(payload), headers=headers)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        if response.status >= 300:
            raise RuntimeError(f"devpi {method} {path}: {response.status} {body[:300]!r}")
        return json.loads(body) if body else {}

    def _create_index(self) -> None:
        self._api("PUT", f"/{self.user}", {"password": self.password})
        self._api(
            "PUT", f"/{self.user}/{self.index}", {"bases": [], "volatile": True}, self._auth()
        )
        self._created = True

    def _auth(self) -> str:
        if self._token is None:
            login = self._api("POST", "/+login", {"user": self.user, "password": self.password})
            token = f"{self.user}:{login['result']['password']}"
            self._token = base64.b64encode(token.encode()).decode()
        return self._token

    def upload_headers(self) -> dict[str, str]:
        return {"X-Devpi-Auth": self._auth()}

    def basic_headers(self) -> dict[str, str]:
        """HTTP Basic auth, as twine sends it (for the upload-rate comparison)."""
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


class DevpiMirror(Devpi):
    """devpi-server as a caching proxy: a ``root/upstream`` mirror index of one upstream.

    Created as devpi's docs say for a custom upstream (``devpi index -c
    root/upstream type=mirror mirror_url=URL``, here through the same REST
    call devpi-client makes), on a server initialised without root/pypi and
    not in offline mode, so it fetches from that upstream on demand.
    """

    user = "root"
    index = "upstream"
    password = "bench-root"
    twine_user = user
    twine_password = password

    def __init__(self, work: Path, bin_dir: Path, upstream: str) -> None:
        super().__init__(work, bin_dir)
        self.upstream = upstream

    def command(self) -> list[str]:
        return [arg for arg in super().command() if arg != "--offline-mode"]

    def _create_index(self) -> None:
        index = {"type": "mirror", "mirror_url": self.upstream}
        self._api("PUT", f"/{self.user}/{self.index}", index, self._auth())
        self._created = True


class Proxpi(Server):
    """proxpi in front of one upstream, under gunicorn as its Docker image runs it.

    The image's entry point (``gunicorn --preload``, its access log and
    logger class, ``--threads 2``), configured by its documented
    environment: ``PROXPI_INDEX_URL`` and ``PROXPI_CACHE_DIR`` (in the work
    directory, so every fresh instance starts with an empty cache).
    """

    label = "proxpi"

    def __init__(self, work: Path, bin_dir: Path, upstream: str, threads: int = 2) -> None:
        super().__init__(work)
        self.bin_dir = bin_dir
        self.upstream = upstream
        self.threads = threads
        self.cache_dir = work / "cache"

    @property
    def simple_url(self) -> str:
        return f"{self.base}/index/"

    def ready_url(self) -> str:
        return f"{self.base}/health"

    def command(self) -> list[str]:
        return [
            str(self.bin_dir / "gunicorn"),
            "--preload",
            "--access-logfile",
            "-",
            "--access-logformat",
            '%(h)s "%(r)s" %(s)s %(b)s %(M)dms',
            "--logger-class",
            "proxpi.server._GunicornLogger",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--threads",
            str(self.threads),
            "proxpi.server:app",
        ]

    def env(self) -> dict[str, str]:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return {
            **super().env(),
            "PROXPI_INDEX_URL": self.upstream,
            "PROXPI_CACHE_DIR": str(self.cache_dir),
            "NO_COLOR": "1",
        }


NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    types {{ text/html html; application/zip whl; application/gzip gz; }}
    default_type application/octet-stream;
{upstream}
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/root;
        index index.html;
{locations}
    }}
}}
"""

PROXY_UPSTREAM = """\
    upstream up{number} {{ server {address}; keepalive 64; }}
"""

PROXY_LOCATION = """\
        location {prefix} {{
            proxy_pass http://up{number}/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
"""

#: A backend that costs nothing: nginx answering every request with the
#: same X-Accel-Redirect, behind ``/stub/``.
STUB_SERVER = """\
    upstream stub {{ server 127.0.0.1:{port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ add_header X-Accel-Redirect {location}; return 200 ""; }}
    }}
"""

STUB_LOCATION = """\
        location /stub/ {
            proxy_pass http://stub/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
"""

#: Where X-Accel-Redirect answers point: only reachable through the header.
INTERNAL_LOCATION = """\
        location {prefix} {{
            internal;
            alias {directory}/;
        }}
"""


class Nginx(Server):
    """nginx serving saved pages and files statically: the ceiling.

    One worker process, like one ministry process (and wrk needs the other
    core). ``proxies`` maps a location prefix (``/proxied/``) to an address
    (``127.0.0.1:PORT``, ``unix:PATH``) it reverse-proxies to over
    keep-alive connections, for "ministry behind nginx"; ``internal`` maps a
    prefix to a directory served only through ``X-Accel-Redirect`` answers;
    ``accel_stub`` is the redirect a stub backend at ``/stub/`` answers
    every request with.
    """

    label = "nginx"
    serves_json = False

    def __init__(
        self,
        work: Path,
        workers: int = 1,
        proxies: Mapping[str, str] | None = None,
        internal: Mapping[str, Path] | None = None,
        accel_stub: str | None = None,
    ) -> None:
        super().__init__(work)
        self.root = work / "root"
        self.workers = workers
        self.proxies = dict(proxies or {})
        self.internal = dict(internal or {})
        self.accel_stub = accel_stub
        self.stub_port = free_port()

    def put(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path`` (a directory path gets an index.html); its URL."""
        target = self.root / path.lstrip("/")
        if path.endswith("/"):
            target = target / "index.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return self.base + path

    def command(self) -> list[str]:
        (self.work / "tmp").mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "index.html").write_text("ok\n")
        conf = self.work / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                workers=self.workers,
                prefix=self.work,
                port=self.port,
                upstream="".join(
                    PROXY_UPSTREAM.format(number=number, address=address)
                    for number, address in enumerate(self.proxies.values())
                )
                + (
                    STUB_SERVER.format(port=self.stub_port, location=self.accel_stub)
                    if self.accel_stub
                    else ""
                ),
                locations=(STUB_LOCATION if self.accel_stub else "")
                + "".join(
                    PROXY_LOCATION.format(prefix=prefix, number=number)
                    for number, prefix in enumerate(self.proxies)
                )
                + "".join(
                    INTERNAL_LOCATION.format(prefix=prefix, directory=directory)
                    for prefix, directory in self.internal.items()
                ),
            )
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [nginx, "-p", str(self.work), "-c", str(conf), "-e", str(self.work / "error.log")]

    def ready_url(self) -> str:
        return f"{self.base}/"

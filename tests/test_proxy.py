"""The proxy against real upstreams on loopback, driven by real pip and uv.

Upstreams: a second ``twistd ministry`` (JSON pages, ``.metadata`` files)
holding a small dependency tree uploaded here; pypiserver, installed from the
registry, as an HTML-only index; and tiny servers in threads that hang,
answer 500, serve a file that does not match its page's hash, or send a file
in two halves. pip and uv are given the proxy as their only index, with no
configuration and no caches, so everything they install came through it.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from archive_factory import make_wheel, wheel_filename
from http_harness import post_file
from servers import MinistryProcess, client_env, free_port, wait_listening

pytestmark = pytest.mark.e2e

#: (name, version, requirements): proxy-app needs proxy-lib, which needs proxy-base.
TREE = [
    ("proxy-base", "1.0", []),
    ("proxy-lib", "1.0", ["proxy-base>=1.0"]),
    ("proxy-lib", "1.1", ["proxy-base>=1.0"]),
    ("proxy-app", "1.0", ["proxy-lib>=1.0"]),
]
INSTALLED = {"proxy_app-1.0", "proxy_lib-1.1", "proxy_base-1.0"}
#: A private project and an upstream namesake with a higher version.
SHADOWED = [("shadowed", "5.0", []), ("victim", "1.0", ["shadowed"])]
PRIVATE = ("shadowed", "1.0")


def upload(url: str, name: str, version: str, requires: list[str] = ()) -> None:
    data = make_wheel(name, version, requires_dist=list(requires))
    post_file(url, name, version, wheel_filename(name, version), data)


def install(tool: str, index: str, target: Path, home: Path, *requirements: str):
    """``pip install`` or ``uv pip install`` into ``target``, from ``index`` alone, uncached."""
    if tool == "pip":
        command = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--retries", "0"]
        command += ["--timeout", "15"]
    else:
        command = [sys.executable, "-m", "uv", "pip", "install", "--no-cache"]
        command += ["--python", sys.executable]
    command += ["--target", str(target), "--index-url", f"{index}/simple/", *requirements]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=client_env(home)
    )


def installed(target: Path) -> set[str]:
    return {path.name.removesuffix(".dist-info") for path in target.glob("*.dist-info")}


def assert_installs(tool: str, index: str, where: Path, *requirements: str) -> set[str]:
    target = where / f"{tool}-{time.monotonic_ns()}"
    done = install(tool, index, target, where / "home", *requirements)
    assert done.returncode == 0, done.stdout + done.stderr
    return installed(target)


def cached_files(proxy: MinistryProcess) -> list[str]:
    root = proxy.data_dir / "upstream" / "files"
    return sorted(p.name for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts)


def get(url: str, timeout: float = 30) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# -- a ministry upstream (JSON and .metadata) -----------------------------------


def test_pip_and_uv_install_a_tree_through_the_proxy_then_from_cache_alone(tmp_path):
    with MinistryProcess(tmp_path / "upstream") as upstream:
        for name, version, requires in TREE:
            upload(upstream.url, name, version, requires)
        proxy = MinistryProcess(
            tmp_path / "proxy",
            *("--upstream", f"{upstream.url}/simple/", "--upstream-ttl", "1s"),
            *("--upstream-timeout", "3"),
        )
        with proxy:
            assert assert_installs("pip", proxy.url, tmp_path, "proxy-app") == INSTALLED
            assert assert_installs("uv", proxy.url, tmp_path, "proxy-app") == INSTALLED
            log = proxy.log_text()
            assert "GET /packages/proxy-app/proxy_app-1.0-py3-none-any.whl.metadata" in log
            # Upstream connections come and go without a log line each.
            assert "HTTP11ClientFactory" not in log
            assert {f"{name}-1.0-py3-none-any.whl" for name in ("proxy_app", "proxy_base")} <= set(
                cached_files(proxy)
            )
            # The clients only ever talked to the proxy.
            upstream_log = upstream.log_text()
            assert "MinistryOfPackages" in upstream_log
            assert "pip/" not in upstream_log and "uv/" not in upstream_log
            status, index = get(f"{proxy.url}/simple/")
            assert status == 200 and b'href="proxy-app/"' in index

            upstream.stop()
            time.sleep(1.2)  # every cached page is past its TTL now
            mark = proxy.log_size()
            assert assert_installs("pip", proxy.url, tmp_path, "proxy-app") == INSTALLED
            assert assert_installs("uv", proxy.url, tmp_path, "proxy-app") == INSTALLED
            assert "serving its page from" in proxy.log_since(mark)


def test_offline_installs_what_is_cached(tmp_path):
    with MinistryProcess(tmp_path / "upstream") as upstream:
        for name, version, requires in TREE:
            upload(upstream.url, name, version, requires)
        with MinistryProcess(tmp_path / "proxy", "--upstream", f"{upstream.url}/simple/") as proxy:
            assert assert_installs("pip", proxy.url, tmp_path, "proxy-app") == INSTALLED
    with MinistryProcess(tmp_path / "proxy", "--offline") as offline:
        assert assert_installs("uv", offline.url, tmp_path, "proxy-app") == INSTALLED
        # proxy-lib 1.0 was never fetched: offline, it is not offered.
        status, page = get(f"{offline.url}/simple/proxy-lib/")
        assert status == 200 and b"proxy_lib-1.1" in page and b"proxy_lib-1.0" not in page


# -- pypiserver, an HTML-only upstream ------------------------------------------


@pytest.fixture(scope="module")
def pypiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """pypiserver on loopback serving TREE and SHADOWED; yields its URL and its log.

    ``-v`` makes it log every request (``<LocalRequest: GET http://...>``).
    """
    where = tmp_path_factory.mktemp("pypiserver")
    packages = where / "packages"
    packages.mkdir()
    for name, version, requires in TREE + SHADOWED:
        data = make_wheel(name, version, requires_dist=requires)
        (packages / wheel_filename(name, version)).write_bytes(data)
    port = free_port()
    log = where / "pypiserver.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "pypiserver", "run", "-v", "-p", str(port)),
                *("-i", "127.0.0.1", "--disable-fallback", str(packages)),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_listening(port, process, "pypiserver")
        assert get(f"{url}/simple/", timeout=5)[0] == 200, log.read_text()
        yield url, log
    finally:
        process.terminate()
        process.wait(10)


def test_pip_and_uv_install_through_an_html_only_upstream(tmp_path, pypiserver):
    url, _log = pypiserver
    with MinistryProcess(tmp_path / "proxy", "--upstream", f"{url}/simple/") as proxy:
        assert assert_installs("pip", proxy.url, tmp_path, "proxy-app") == INSTALLED
        assert assert_installs("uv", proxy.url, tmp_path, "proxy-app") == INSTALLED
        status, page = get(f"{proxy.url}/simple/proxy-lib/")
        assert status == 200
        assert b"../../packages/proxy-lib/proxy_lib-1.1-py3-none-any.whl#sha256=" in page
        assert url.encode() not in page


def test_a_private_project_shadows_its_upstream_namesake(tmp_path, pypiserver):
    url, log = pypiserver
    with MinistryProcess(tmp_path / "proxy", "--upstream", f"{url}/simple/") as proxy:
        upload(proxy.url, *PRIVATE)
        assert assert_installs("pip", proxy.url, tmp_path, "victim") == {
            "victim-1.0",
            "shadowed-1.0",
        }
        status, page = get(f"{proxy.url}/simple/shadowed/")
        assert status == 200 and b"shadowed-1.0" in page and b"5.0" not in page
    asked = log.read_text()
    assert "/simple/victim/" in asked
    assert "/simple/shadowed/" not in asked
    assert not (proxy.data_dir / "upstream" / "pages" / "shadowed.json").exists()


# -- upstreams in trouble --------------------------------------------------------


class _Script(BaseHTTPRequestHandler):
    """Answers from ``self.server.routes``: path -> callable(handler)."""

    def do_GET(self) -> None:
        self.server.routes.get(self.path, _not_found)(self)

    def log_message(self, *args) -> None:
        pass


def _not_found(handler: BaseHTTPRequestHandler) -> None:
    handler.send_error(404)


def _answer(body: bytes, content_type: str = "text/html") -> Callable:
    def send(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return send


@pytest.fixture
def scripted() -> Iterator[Callable[[dict], str]]:
    """Starts a threaded HTTP server answering from a routes dict; yields a starter."""
    servers: list[ThreadingHTTPServer] = []

    def start(routes: dict) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Script)
        server.daemon_threads = True
        server.routes = routes
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hanging() -> Iterator[str]:
    """A loopback server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for connection in held:
        connection.close()
    listener.close()


def test_a_hanging_upstream_is_answered_within_the_timeout(tmp_path, hanging):
    with MinistryProcess(
        tmp_path / "proxy", "--upstream", f"{hanging}/simple/", "--upstream-timeout", "1"
    ) as proxy:
        started = time.monotonic()
        status, body = get(f"{proxy.url}/simple/anything/")
        assert status == 502
        assert b"no response within 1 s" in body
        assert time.monotonic() - started < 5


def test_an_upstream_answering_500_is_a_502(tmp_path, scripted):
    def fail(handler: BaseHTTPRequestHandler) -> None:
        handler.send_error(500, "Upstream on fire")

    upstream = scripted({"/simple/anything/": fail})
    with MinistryProcess(tmp_path / "proxy", "--upstream", f"{upstream}/simple/") as proxy:
        status, body = get(f"{proxy.url}/simple/anything/")
        assert status == 502
        assert b"answered 500" in body
        done = install("pip", proxy.url, tmp_path / "t", tmp_path / "home", "anything")
        assert done.returncode != 0


def test_a_page_without_digests_is_refused_with_the_reason(tmp_path, scripted):
    filename = wheel_filename("nodigest", "1.0")
    page = f'<a href="../../files/{filename}">{filename}</a>'.encode()  # no #sha256=
    upstream = scripted({"/simple/nodigest/": _answer(page)})
    with MinistryProcess(tmp_path / "proxy", "--upstream", f"{upstream}/simple/") as proxy:
        status, body = get(f"{proxy.url}/simple/nodigest/")
        assert status == 502
        assert b"none of its 1 files has a sha256 digest" in body
        # uv prints the status line, so its user reads why, not "no versions found".
        done = install("uv", proxy.url, tmp_path / "t", tmp_path / "home", "nodigest")
        assert done.returncode != 0
        assert (
            "has a sha256 digest" in done.stderr and "serves only files it can check" in done.stderr
        )


def test_a_file_with_a_wrong_hash_fails_and_nothing_is_kept(tmp_path, scripted):
    data = make_wheel("bad", "1.0")
    filename = wheel_filename("bad", "1.0")
    wrong = hashlib.sha256(b"something else").hexdigest()
    page = f'<a href="../../files/{filename}#sha256={wrong}">{filename}</a>'.encode()
    upstream = scripted({"/simple/bad/": _answer(page), f"/files/{filename}": _answer(data)})
    with MinistryProcess(tmp_path / "proxy", "--upstream", f"{upstream}/simple/") as proxy:
        with pytest.raises((http.client.IncompleteRead, ConnectionError, urllib.error.URLError)):
            get(f"{proxy.url}/packages/bad/{filename}")
        done = install("pip", proxy.url, tmp_path / "t", tmp_path / "home", "bad")
        assert done.returncode != 0
        assert cached_files(proxy) == []
        assert list((proxy.data_dir / "upstream" / "files" / ".staging").glob("*")) == []
        assert "is not the page's" in proxy.log_text()


def test_the_first_bytes_arrive_before_the_upstream_has_sent_the_whole_file(tmp_path, scripted):
    data = bytes(range(256)) * 4096  # 1 MiB
    filename = "slow-1.0.tar.gz"
    digest = hashlib.sha256(data).hexdigest()
    release = threading.Event()

    def halves(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[: len(data) // 2])
        handler.wfile.flush()
        release.wait(30)
        handler.wfile.write(data[len(data) // 2 :])

    page = f'<a href="/files/{filename}#sha256={digest}">{filename}</a>'.encode()
    upstream = scripted({"/simple/slow/": _answer(page), f"/files/{filename}": halves})
    with MinistryProcess(tmp_path / "proxy", "--upstream", f"{upstream}/simple/") as proxy:
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=20)
        try:
            connection.request("GET", f"/packages/slow/{filename}")
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Content-Length") == str(len(data))
            first = response.read(100_000)
            assert first == data[:100_000]
            release.set()
            assert first + response.read() == data
        finally:
            release.set()
            connection.close()
        for _ in range(50):
            if cached_files(proxy):
                break
            time.sleep(0.1)
        assert cached_files(proxy) == [filename]


def _redirect(location: Callable[[], str]) -> Callable:
    def send(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location())
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return send


@pytest.mark.parametrize("allowed", [False, True], ids=["not-named", "named"])
def test_a_redirect_to_another_host_is_followed_only_to_a_named_one(tmp_path, scripted, allowed):
    data = make_wheel("moved", "1.0")
    filename = wheel_filename("moved", "1.0")
    digest = hashlib.sha256(data).hexdigest()
    routes = {
        "/simple/moved/": _answer(
            f'<a href="../../files/{filename}#sha256={digest}">x</a>'.encode()
        )
    }
    upstream = scripted(routes)
    port = upstream.rsplit(":", 1)[1]
    # The same server under another host name: a redirect off the host that was asked.
    routes[f"/files/{filename}"] = _redirect(lambda: f"http://localhost:{port}/store/{filename}")
    routes[f"/store/{filename}"] = _answer(data, "application/octet-stream")
    named = ("--upstream-redirect-host", "localhost") if allowed else ()
    with MinistryProcess(tmp_path / "proxy", "--upstream", f"{upstream}/simple/", *named) as proxy:
        if allowed:
            status, body = get(f"{proxy.url}/packages/moved/{filename}")
            assert status == 200 and body == data
        else:
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{proxy.url}/packages/moved/{filename}", timeout=30)
            assert refused.value.code == 502
            assert "to localhost, a host --upstream-redirect-host does not name" in (
                refused.value.read().decode()
            )
            assert cached_files(proxy) == []

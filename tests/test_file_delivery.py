"""Files and big pages over real TCP: sendfile, slow and vanishing clients, nginx.

A real ``twistd ministry`` holds a 10 MiB wheel of random (incompressible)
bytes and a project whose page is over 256 KiB, so both leave in several
chunks (``ministry.web.http.sending``). Clients that read slowly make the socket
fill, which sends the producer from ``sendfile`` back through the
transport's buffer and back; clients that hang up mid-file must not leave
file descriptors open. Behind a real nginx with ``--x-accel-redirect``,
nginx sends the bytes itself from the data directory.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from accept_headers import TEXT_HTML
from archive_factory import make_wheel, wheel_filename
from http_harness import multipart, upload_fields
from nginx_proxy import nginx
from servers import MinistryProcess

pytestmark = pytest.mark.e2e

PROJECT = "bulky"
WHEEL_NAME = wheel_filename(PROJECT, "1.0")
PAGE_PROJECT = "wordy"
ACCEL_PREFIX = "/_ministry/"


@pytest.fixture(scope="module")
def big_wheel() -> bytes:
    payload = os.urandom(10 * 1024 * 1024)
    return make_wheel(
        PROJECT,
        "1.0",
        extra_members={"bulky/blob.bin": payload},
        compression=zipfile.ZIP_STORED,
    )


def upload(server: MinistryProcess, name: str, version: str, data: bytes, **fields: str) -> None:
    filename = wheel_filename(name, version)
    extra = [(key, value) for key, value in fields.items()]
    body, content_type = multipart(
        upload_fields(name, version, filename, data) + extra, [("content", filename, data)]
    )
    token = base64.b64encode(b"user:password").decode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(
            "POST",
            "/legacy/",
            body=body,
            headers={"Content-Type": content_type, "Authorization": f"Basic {token}"},
        )
        response = connection.getresponse()
        assert response.status == 200, response.read()
        response.read()
    finally:
        connection.close()


def get(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.msg, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, big_wheel: bytes) -> Iterator[MinistryProcess]:
    with MinistryProcess(tmp_path_factory.mktemp("delivery") / "data") as daemon:
        upload(daemon, PROJECT, "1.0", big_wheel)
        long_readme = "\n\n".join(f"Paragraph {n}: " + "words " * 60 for n in range(1200))
        wordy = make_wheel(PAGE_PROJECT, "1.0", description=long_readme)
        upload(daemon, PAGE_PROJECT, "1.0", wordy)
        yield daemon


def file_path() -> str:
    return f"/packages/{PROJECT}/{WHEEL_NAME}"


def raw_get(port: int, path: str, keep_alive: bool = False) -> socket.socket:
    connection = socket.socket()
    # A small window (set before connecting) makes the server's socket fill.
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    connection.settimeout(30)
    connection.connect(("127.0.0.1", port))
    close = "" if keep_alive else "Connection: close\r\n"
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{close}\r\n".encode())
    return connection


def read_response(connection: socket.socket) -> tuple[bytes, bytes]:
    """Headers and body of one response with a Content-Length."""
    buffered = b""
    while b"\r\n\r\n" not in buffered:
        chunk = connection.recv(65536)
        assert chunk, "connection closed before the headers"
        buffered += chunk
    head, _, body = buffered.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, f"connection closed after {len(body)} of {length} bytes"
        body += chunk
    return head, body


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_big_file_arrives_whole_with_its_length_and_type(server, big_wheel):
    status, headers, body = get(server.port, file_path())
    assert status == 200
    assert hashlib.sha256(body).digest() == hashlib.sha256(big_wheel).digest()
    assert headers["Content-Length"] == str(len(big_wheel))
    assert headers["Content-Type"] == "application/zip"
    assert "Content-Encoding" not in headers


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000000-", 1000000, None),
        ("bytes=-300000", -300000, None),
        ("bytes=262100-786500", 262100, 786500),
    ],
)
def test_ranges_of_a_big_file(server, big_wheel, header, first, last):
    status, headers, body = get(server.port, file_path(), {"Range": header})
    expected = big_wheel[first:] if last is None else big_wheel[first : last + 1]
    assert status == 206
    assert body == expected
    assert headers["Content-Length"] == str(len(expected))


def test_slow_readers_get_every_byte_and_the_connection_stays_usable(server, big_wheel):
    """The socket fills while nobody reads: sendfile gives way to the buffer and back."""
    results: list[bytes] = []
    failures: list[BaseException] = []

    def slow_client() -> None:
        try:
            read_slowly()
        except BaseException as exc:
            failures.append(exc)

    def read_slowly() -> None:
        connection = raw_get(server.port, file_path(), keep_alive=True)
        try:
            time.sleep(1.0)  # let the server hit a full socket
            _, body = read_response(connection)
            results.append(body)
            connection.sendall(
                f"GET /simple/{PROJECT}/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
            )
            head, page = read_response(connection)
            assert head.startswith(b"HTTP/1.1 200")
            assert WHEEL_NAME.encode() in page
        finally:
            connection.close()

    threads = [threading.Thread(target=slow_client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(results) == 4
    assert all(body == big_wheel for body in results)


def test_clients_that_hang_up_mid_file_leave_no_open_files(server, big_wheel):
    assert server.process is not None
    get(server.port, file_path())  # warm: the view is cached, the log is open
    before = open_descriptors(server.process.pid)
    for _ in range(20):
        connection = raw_get(server.port, file_path())
        connection.recv(100_000)
        connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        connection.close()  # a reset, mid-body
    deadline = time.monotonic() + 10
    while open_descriptors(server.process.pid) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_descriptors(server.process.pid) <= before
    status, _, body = get(server.port, file_path())
    assert status == 200 and body == big_wheel


def test_a_page_bigger_than_a_chunk_arrives_whole(server):
    status, headers, body = get(server.port, f"/project/{PAGE_PROJECT}/")
    assert status == 200
    assert len(body) > 256 * 1024
    assert headers["Content-Length"] == str(len(body))
    assert body.rstrip().endswith(b"</html>")
    assert b"Paragraph 1199:" in body
    status, headers, nothing = get(server.port, f"/project/{PAGE_PROJECT}/", method="HEAD")
    assert (status, nothing) == (200, b"")
    assert headers["Content-Length"] == str(len(body))


# -- behind nginx ---------------------------------------------------------------

#: Inside nginx's server block: everything to the daemon, and the internal
#: location its ``X-Accel-Redirect`` answers name.
ACCEL_SERVER = """\
        listen 127.0.0.1:{{port}};
        location / {{{{
            proxy_pass http://ministry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}}}
        location {prefix} {{{{
            internal;
            alias {data_dir}/;
        }}}}
"""


@pytest.fixture(scope="module")
def behind_nginx(
    tmp_path_factory: pytest.TempPathFactory, server: MinistryProcess
) -> Iterator[tuple[int, MinistryProcess]]:
    """nginx in front of a second daemon on the same data, with --x-accel-redirect."""
    work = tmp_path_factory.mktemp("nginx")
    data_dir = Path(server.data_dir).resolve()
    block = ACCEL_SERVER.format(prefix=ACCEL_PREFIX, data_dir=data_dir)
    with (
        MinistryProcess(server.data_dir, "--x-accel-redirect", ACCEL_PREFIX) as accel,
        nginx(work, accel.port, block) as port,
    ):
        yield port, accel


def test_ministry_answers_with_the_redirect_and_no_body(behind_nginx):
    _, accel = behind_nginx
    status, headers, body = get(accel.port, file_path())
    assert status == 200
    assert body == b""
    location = headers["X-Accel-Redirect"]
    assert location.startswith(ACCEL_PREFIX + "files/")
    assert location.endswith("/" + WHEEL_NAME)
    assert headers["Content-Type"] == "application/zip"


def test_nginx_sends_the_file_itself(behind_nginx, big_wheel):
    port, accel = behind_nginx
    mark = accel.log_size()
    status, headers, body = get(port, file_path())
    assert status == 200
    assert body == big_wheel
    assert headers["Content-Type"] == "application/zip"
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "X-Accel-Redirect" not in headers
    assert headers.get_all("Accept-Ranges") == ["bytes"]
    assert f"GET {file_path()}" in accel.log_since(mark)
    status, _, part = get(port, file_path(), {"Range": "bytes=100-199"})
    assert (status, part) == (206, big_wheel[100:200])


def lane_answers(daemon: MinistryProcess) -> float:
    _, _, body = get(daemon.port, "/metrics")
    (line,) = [x for x in body.decode().splitlines() if x.startswith("ministry_fast_lane_answers")]
    return float(line.split()[-1])


def test_downloads_through_nginx_take_the_fast_lane(behind_nginx, big_wheel):
    """nginx's keep-alive requests are plain GETs: ministry answers them from memory."""
    port, accel = behind_nginx
    get(port, file_path())  # the project's view is cached after the first
    before = lane_answers(accel)
    for _ in range(3):
        status, _, body = get(port, file_path())
        assert (status, body) == (200, big_wheel)
    assert lane_answers(accel) == before + 3
    # A range request carries a header the lane leaves to twisted.web.
    status, _, part = get(port, file_path(), {"Range": "bytes=0-9"})
    assert (status, part) == (206, big_wheel[:10])
    assert lane_answers(accel) == before + 3


def test_the_internal_location_is_not_reachable_from_outside(behind_nginx):
    port, accel = behind_nginx
    _, headers, _ = get(accel.port, file_path())
    status, _, _ = get(port, headers["X-Accel-Redirect"])
    assert status == 404


def test_pages_pass_through_nginx_unchanged(behind_nginx, server):
    port, _ = behind_nginx
    direct = get(server.port, f"/simple/{PROJECT}/", {"Accept": TEXT_HTML})
    through = get(port, f"/simple/{PROJECT}/", {"Accept": TEXT_HTML})
    assert through[0] == 200
    assert through[2] == direct[2]


def test_a_file_cut_short_on_disk_is_never_sent_as_whole(server):
    """The record says 1 MiB, the disk holds less: the client sees a broken transfer."""
    data = make_wheel(
        "shrunk",
        "1.0",
        extra_members={"shrunk/blob.bin": os.urandom(1024 * 1024)},
        compression=zipfile.ZIP_STORED,
    )
    upload(server, "shrunk", "1.0", data)
    name = wheel_filename("shrunk", "1.0")
    (blob,) = Path(server.data_dir, "files").rglob(name)
    with open(blob, "r+b") as handle:
        handle.truncate(len(data) // 2)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", f"/packages/shrunk/{name}")
        response = connection.getresponse()
        assert response.status == 200
        with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
            response.read()
    finally:
        connection.close()
    assert get(server.port, "/simple/shrunk/")[0] == 200  # the daemon carries on


@pytest.mark.parametrize("storage", [None, "elsewhere/blobs"])
def test_accel_uris_of_uploads_and_proxied_files_stay_inside_the_alias(tmp_path, storage):
    """nginx's alias is the directory holding the uploads' and ``upstream/files``: never ``..``."""
    from ministry.backends import build_storage
    from ministry.config import load_settings

    options = {"data-dir": str(tmp_path / "data"), "x-accel-redirect": "/_m/"}
    if storage is not None:
        options["storage"] = f"file:{tmp_path / storage}"
    settings = load_settings(options)
    built = build_storage(settings, settings.data_dir, reactor=None)
    key = f"ab/cd/{'e' * 60}/demo-1.0.tar.gz"
    uploads_dir = "files" if storage is None else "blobs"
    for blobs, where in ((built.uploads, uploads_dir), (built.upstream, "upstream/files")):
        sent = built.delivery.file(blobs, key, 1, b"application/gzip", b'"e"', datetime.now(UTC))
        assert sent.accel == f"/_m/{where}/{key}".encode()

"""Every malformed or unwelcome request gets an answer with a reason, and never a 5xx.

Raw bytes over a socket to a real ``twistd ministry`` (open index,
``--max-upload-size 1M``): no client library would send most of these. Each
case asserts the status, that the reason is in the status line and in the
body, and that the daemon still answers afterwards. The body rules are
checked from the head alone: a body that could only be refused is refused
before it is sent, and before any ``100 Continue``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from rawhttp import RawResponse, connect, exchange, read_response
from servers import MinistryProcess

MiB = 1024 * 1024
#: Credentials that are not checked before the body (only their presence is).
AUTH = b"Authorization: Basic " + base64.b64encode(b"someone:wrong")
PART = b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n'


def post(body: bytes, kind: bytes = b"multipart/form-data; boundary=b") -> bytes:
    """A POST to / of ``body``, whole, with its length."""
    return head(b"POST /", b"Content-Type: " + kind, b"Content-Length: %d" % len(body)) + body


def head(method_path: bytes, *headers: bytes) -> bytes:
    """A request head: the method and path, then ``Host`` and ``headers``."""
    return (
        method_path + b" HTTP/1.1\r\nHost: x\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"
    )


FORM = b"Content-Type: multipart/form-data; boundary=b"
URLENCODED = b"Content-Type: application/x-www-form-urlencoded"
CHUNKED = b"Transfer-Encoding: chunked"
EXPECT = b"Expect: 100-continue"
HUGE_PART_HEADER = b'--b\r\nContent-Disposition: form-data; name="' + b"a" * 5000 + b'"\r\n\r\n'
UNKNOWN_CHARSET = PART.replace(b"\r\n\r\n", b"\r\nContent-Type: text/plain; charset=nope\r\n\r\n")
MANY_PARTS = PART * 2001 + b"--b--\r\n"


def length(size: int) -> bytes:
    return b"Content-Length: %d" % size


def case(name: str, request_bytes: bytes, status: int) -> object:
    return pytest.param(request_bytes, status, id=name)


CASES = [
    # The request line and the head.
    case("request line over 16 KiB", b"GET /" + b"a" * 17000 + b" HTTP/1.1\r\n\r\n", 414),
    case("header line over 16 KiB", head(b"GET /simple/", b"X-Big: " + b"a" * 17000), 431),
    case(
        "head over 16 KiB",
        head(b"GET /simple/", *[b"X-%d: %s" % (n, b"a" * 999) for n in range(20)]),
        431,
    ),
    case(
        "more than 100 headers", head(b"GET /simple/", *[b"X-%d: a" % n for n in range(101)]), 431
    ),
    case("not HTTP", b"HELLO THERE\r\n\r\n", 400),
    case("a header without a colon", head(b"GET /simple/", b"Nonsense"), 400),
    case("a Content-Length not a number", head(b"POST /", b"Content-Length: abc"), 400),
    case("an Expect other than 100-continue", head(b"GET /simple/", b"Expect: tea"), 417),
    # Bodies where none belongs, and of types no route takes.
    case("a GET with a body", head(b"GET /simple/", length(5)) + b"hello", 400),
    case("a POST to a page", head(b"POST /simple/", length(5)) + b"hello", 405),
    case("an upload as text/plain", post(b"hello", b"text/plain"), 415),
    case("an API call as a form", head(b"POST /api/yank", FORM, AUTH, length(5)) + b"hello", 415),
    # Sizes, declared and chunked.
    case("a form declared over the cap", head(b"POST /", FORM, length(50 * MiB)), 413),
    case("a url-encoded body over 1 MiB", head(b"POST /", URLENCODED, AUTH, length(2 * MiB)), 413),
    case(
        "a chunked body past 1 MiB",
        head(b"POST /", URLENCODED, AUTH, CHUNKED) + b"%x\r\n" % (2 * MiB) + b"a" * 2 * MiB,
        413,
    ),
    case("a malformed chunked body", head(b"POST /", FORM, CHUNKED) + b"zz\r\n", 400),
    # Multipart parser limits and contents.
    case("more than 2000 parts", post(MANY_PARTS), 413),
    case("a part header over 4 KiB", post(HUGE_PART_HEADER + b"v\r\n--b--\r\n"), 413),
    case("more than 8 headers in a part", post(b"--b\r\n" + b"X-A: b\r\n" * 9 + PART[5:]), 413),
    case("a bare-LF body over a limit", post(b"\n" + MANY_PARTS.replace(b"\r\n", b"\n")), 413),
    case("a part in an unknown charset", post(UNKNOWN_CHARSET + b"--b--\r\n"), 400),
    case("a truncated multipart body", post(PART), 400),
]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    root = tmp_path_factory.mktemp("malformed")
    with MinistryProcess(root / "data", "--max-upload-size", "1M") as process:
        yield process


def assert_refusal(response: RawResponse, status: int) -> None:
    assert response.status == status, response
    assert response.reason, "no reason in the status line"
    assert response.reason in response.body.decode(), response


@pytest.mark.parametrize(("request_bytes", "status"), CASES)
def test_each_malformed_request_gets_its_status_and_a_reason(daemon, request_bytes, status):
    mark = daemon.log_size()
    assert_refusal(exchange(daemon.port, request_bytes), status)
    assert exchange(daemon.port, head(b"GET /simple/")).status == 200
    assert "Unhandled" not in daemon.log_since(mark)


def answer_to_head_alone(daemon: MinistryProcess, request_head: bytes) -> tuple[RawResponse, float]:
    """Send only a head that announces a body, and read the answer; and how long it took."""
    with connect(daemon.port) as sock:
        started = time.monotonic()
        sock.sendall(request_head)
        return read_response(sock), time.monotonic() - started


def test_a_250_mb_form_without_credentials_is_refused_before_its_body(daemon):
    form = head(b"POST /", URLENCODED, length(250 * MiB))
    response, took = answer_to_head_alone(daemon, form)
    assert_refusal(response, 401)
    assert response.headers["www-authenticate"] == 'Basic realm="ministry"'
    assert took < 2


def test_expect_100_continue_over_the_cap_is_a_413_and_no_100(daemon):
    upload = head(b"POST /", FORM, EXPECT, length(50 * MiB))
    response, took = answer_to_head_alone(daemon, upload)
    assert_refusal(response, 413)
    assert took < 2


def test_expect_100_continue_within_the_rules_still_gets_100(daemon):
    body = PART + b"--b--\r\n"
    upload = head(b"POST /", FORM, EXPECT, length(len(body)))
    with connect(daemon.port) as sock:
        sock.sendall(upload)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert read_response(sock).status == 400  # a form, but no upload


def vm_peak_kib(daemon: MinistryProcess) -> int:
    """The daemon's peak resident memory so far (VmHWM), in KiB."""
    status = Path(f"/proc/{daemon.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])


def test_a_250_mb_body_sent_anyway_costs_the_daemon_no_memory(daemon):
    """The client sends the whole body regardless: it is dropped as it comes, never held."""
    before = vm_peak_kib(daemon)
    form = head(b"POST /", URLENCODED, AUTH, CHUNKED)
    chunk = b"100000\r\n" + b"a" * MiB + b"\r\n"
    with connect(daemon.port) as sock:
        sock.sendall(form)
        try:
            for _ in range(250):
                sock.sendall(chunk)
        except OSError:
            pass  # the daemon stopped reading after its answer and the linger
        assert_refusal(read_response(sock), 413)
    assert vm_peak_kib(daemon) - before < 20 * 1024


def test_an_anonymous_upload_to_an_index_with_users_is_a_401_before_its_body(tmp_path):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("bea:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode() + "\n")
    with MinistryProcess(tmp_path / "data", "--htpasswd", str(htpasswd)) as daemon:
        upload = head(b"POST /legacy/", FORM, EXPECT, length(100 * MiB))
        response, took = answer_to_head_alone(daemon, upload)
        assert_refusal(response, 401)
        assert response.headers["www-authenticate"] == 'Basic realm="ministry"'
        assert took < 2
        # With credentials (checked once the body is in), the body is asked for.
        with connect(daemon.port) as sock:
            sock.sendall(upload[:-2] + AUTH + b"\r\n\r\n")
            assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"

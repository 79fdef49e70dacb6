"""The request target of an upstream URL, and the endpoints of the upstream Agent (issue 17).

Both are on every upstream request: a URL that is a URI already is sent as
it is, and an IRI exactly as hyperlink encodes it; an address's endpoint is
made once and serves every later request to it.
"""

from __future__ import annotations

import pytest
from hyperlink import EncodedURL
from twisted.internet import reactor
from twisted.internet.endpoints import HostnameEndpoint
from twisted.web.client import URI

from ministry.upstream.pool import KEPT_ENDPOINTS, _KeptEndpoints
from ministry.upstream.targets import request_target


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://127.0.0.1:8080/packages/foo/foo-1.0-py3-none-any.whl", None),
        ("https://files.example/a/b/c/foo-1.0.tar.gz?x=1&y=2#sha256=ab", None),
        ("http://h.example/a%2Fb/foo%2B1.0.whl", None),
        ("https://h.example/a b/ü-1.0.whl", b"https://h.example/a%20b/%C3%BC-1.0.whl"),
        ('http://h.example/a"b<c>', b"http://h.example/a%22b%3Cc%3E"),
        ("http://bücher.example/x.whl", b"http://xn--bcher-kva.example/x.whl"),
        ("http://h.example/50%-off.whl", b"http://h.example/50%-off.whl"),
    ],
)
def test_request_target(url, target):
    """A URI as it is (``None`` above); anything else as hyperlink encodes it."""
    assert request_target(url) == (target or url.encode("ascii"))
    assert request_target(url) == EncodedURL.from_text(url).to_uri().to_text().encode()


def endpoint(factory, url):
    return factory.endpointForURI(URI.fromBytes(url))


def test_an_address_keeps_its_endpoint():
    factory = _KeptEndpoints(reactor, timeout=5)
    first = endpoint(factory, b"http://h.example:8080/simple/a/")
    assert isinstance(first, HostnameEndpoint)
    assert endpoint(factory, b"http://h.example:8080/packages/b.whl") is first
    assert endpoint(factory, b"http://h.example:8081/simple/a/") is not first
    tls = endpoint(factory, b"https://h.example:8080/simple/a/")
    assert tls is not first and not isinstance(tls, HostnameEndpoint)  # wrapped in TLS
    assert endpoint(factory, b"https://h.example:8080/x") is tls


def test_many_addresses_are_made_again_not_kept_forever():
    factory = _KeptEndpoints(reactor, timeout=5)
    first = endpoint(factory, b"http://h0.example/")
    for n in range(1, KEPT_ENDPOINTS + 1):
        endpoint(factory, f"http://h{n}.example/".encode())
    assert endpoint(factory, b"http://h0.example/") is not first

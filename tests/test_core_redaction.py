"""Credentials taken out of URLs, and hidden wherever text is shown."""

from __future__ import annotations

import pytest

from ministry.core.redaction import Credentials, origin, redact, redact_url, split_credentials


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:pw@mirror.example.test/simple",
            "https://user:***@mirror.example.test/simple",
        ),
        ("https://TOKEN@mirror.example.test/simple", "https://***@mirror.example.test/simple"),
        ("redis://:pw@redis.example.test:6379/0", "redis://:***@redis.example.test:6379/0"),
        ("unix://:pw@/run/redis.sock?db=1", "unix://:***@/run/redis.sock?db=1"),
        ("https://mirror.example.test/a@b", "https://mirror.example.test/a@b"),
        ("not a URL", "not a URL"),
    ],
)
def test_only_the_secret_is_hidden(url, shown):
    assert redact_url(url) == shown


def test_credentials_are_split_off_and_decoded():
    bare, credentials = split_credentials("https://me:p%40ss@mirror.example.test:8443/simple")
    assert bare == "https://mirror.example.test:8443/simple"
    assert credentials == Credentials("me", "p@ss")
    assert "p@ss" not in repr(credentials)
    assert split_credentials("https://mirror.example.test/") == (
        "https://mirror.example.test/",
        None,
    )


def test_messages_quoting_a_url_lose_its_secret_in_every_spelling():
    url = "redis://:p%40ss@redis.example.test:x/0"
    message = f"bad port in {url!r}; the password p@ss was refused"
    assert redact(message, [url]) == (
        "bad port in 'redis://:***@redis.example.test:x/0'; the password *** was refused"
    )


def test_origins_compare_scheme_host_and_port():
    assert origin("https://Mirror.example.test/simple") == ("https", "mirror.example.test", 443)
    assert origin("http://mirror.example.test:80/x") == origin("http://mirror.example.test/y")
    assert origin("http://mirror.example.test/") != origin("https://mirror.example.test/")

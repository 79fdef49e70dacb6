"""The ``--redis`` URL parser: what it accepts, what it refuses, and that addresses print safely.

Pure (:mod:`ministry.core.redis_url`), so these need no ``redis-server``;
connecting to what a URL names is ``test_redis_store.py``'s.
"""

from __future__ import annotations

import pytest

from ministry.core.redis_url import RedisAddress, parse_redis_url
from ministry.core.setting_values import parse_redis


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://localhost", RedisAddress(host="localhost")),
        ("redis://127.0.0.1:6380/2", RedisAddress(host="127.0.0.1", port=6380, db=2)),
        ("redis://redis.internal:6379/", RedisAddress(host="redis.internal")),
        ("redis://[::1]:7000/1", RedisAddress(host="::1", port=7000, db=1)),
        ("redis://:s3cret@db:6379/0", RedisAddress(host="db", password="s3cret")),
        (
            "redis://ministry:p%40ss%3Aword@db/4",
            RedisAddress(host="db", db=4, username="ministry", password="p@ss:word"),
        ),
        (
            "rediss://db.example.com:6380/0",
            RedisAddress(host="db.example.com", port=6380, tls=True),
        ),
        ("unix:///run/redis/redis.sock", RedisAddress(path="/run/redis/redis.sock")),
        ("unix:///run/redis/redis.sock?db=3", RedisAddress(path="/run/redis/redis.sock", db=3)),
        (
            "unix://:s3cret@/run/redis.sock?db=1",
            RedisAddress(path="/run/redis.sock", db=1, password="s3cret"),
        ),
        ("  redis://db  ", RedisAddress(host="db")),
        (
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster/2",
            RedisAddress(
                sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380)), service="mymaster", db=2
            ),
        ),
        (
            "redis+sentinel://sentinel.internal/mymaster",
            RedisAddress(sentinels=(("sentinel.internal", 26379),), service="mymaster"),
        ),
        (
            "redis+sentinel://[::1]:7000,[::2]/cache-primary/",
            RedisAddress(sentinels=(("::1", 7000), ("::2", 26379)), service="cache-primary"),
        ),
        (
            "redis+sentinel://ministry:p%40ss%2Cword@s1:1,s2:2/mymaster/0",
            RedisAddress(
                sentinels=(("s1", 1), ("s2", 2)),
                service="mymaster",
                username="ministry",
                password="p@ss,word",
            ),
        ),
        (
            "redis+sentinel://:s3cret@s1:26379/mymaster/1",
            RedisAddress(sentinels=(("s1", 26379),), service="mymaster", db=1, password="s3cret"),
        ),
    ],
)
def test_parse_redis_url(url: str, address: RedisAddress) -> None:
    assert parse_redis_url(url) == address


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://localhost:6379", "expected a redis://"),
        ("localhost:6379", "expected a redis://"),
        ("redis://", "no host"),
        ("redis://:pw@/0", "no host"),
        ("redis://db:notaport/0", "bad port"),
        ("redis://db:70000/0", "bad port"),
        ("redis://db/zero", "database number"),
        ("redis://db/0/extra", "database number"),
        ("redis://db/-1", "database number"),
        ("redis://db/0?db=1", "unsupported option"),
        ("redis://db/0#frag", "fragment"),
        ("unix://", "expected unix:///path"),
        ("unix://host/run/redis.sock", "expected unix:///path"),
        ("unix:///run/redis.sock?db=x", "database number"),
        ("unix:///run/redis.sock?timeout=3", "unsupported option"),
        ("redis+sentinel://s1:26379", "no Sentinel service name"),
        ("redis+sentinel://s1:26379/", "no Sentinel service name"),
        ("redis+sentinel://s1:26379//0", "no Sentinel service name"),
        ("redis+sentinel:///mymaster/0", "no Sentinel host"),
        ("redis+sentinel://:pw@/mymaster/0", "no Sentinel host"),
        ("redis+sentinel://s1:26379,,s2:26379/mymaster", "empty Sentinel address"),
        ("redis+sentinel://s1:26379,/mymaster", "empty Sentinel address"),
        ("redis+sentinel://s1:port/mymaster", "bad port"),
        ("redis+sentinel://s1:26379,s2:99999/mymaster", "bad port"),
        ("redis+sentinel://s1:0/mymaster", "bad port"),
        ("redis+sentinel://[::1/mymaster", "bad Redis URL"),
        ("redis+sentinel://s1,[::1/mymaster", "bad Redis URL"),
        ("redis+sentinel://s1,[::1]x/mymaster", "bad Sentinel address"),
        ("redis+sentinel://:26379/mymaster", "bad Sentinel address"),
        ("redis+sentinel://s1/mymaster/zero", "database number"),
        ("redis+sentinel://s1/mymaster/0/extra", "database number"),
        ("redis+sentinel://s1/mymaster?sentinel_password=x", "unsupported option"),
        ("redis+sentinel://s1/mymaster#frag", "fragment"),
        ("rediss+sentinel://s1:26379/mymaster", "TLS through Sentinel is not supported"),
    ],
)
def test_parse_redis_url_refuses(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_redis_url(url)


def test_addresses_print_without_password() -> None:
    assert str(parse_redis_url("redis://u:s3cret@db:6380/2")) == "redis://db:6380/2"
    assert str(parse_redis_url("rediss://[::1]")) == "rediss://[::1]:6379/0"
    assert str(parse_redis_url("unix://:s3cret@/run/r.sock?db=1")) == "unix:///run/r.sock?db=1"
    sentinel = "redis+sentinel://u:s3cret@s1:1,[::1]/mymaster/2"
    assert str(parse_redis_url(sentinel)) == "redis+sentinel://s1:1,[::1]:26379/mymaster/2"


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:s3cret@s1:notaport/mymaster",
        "redis+sentinel://admin:s3cret@s1:26379/mymaster/x",
        "redis+sentinel://:s3cret@/mymaster",
        "redis+sentinel://:s3cret@s1:26379",
        "rediss+sentinel://:s3cret@s1:26379/mymaster",
    ],
)
def test_a_refused_sentinel_url_is_shown_without_its_password(url: str) -> None:
    """The setting's error, as start-up prints it, names the problem and hides the secret."""
    with pytest.raises(ValueError) as refused:
        parse_redis(url)
    assert "s3cret" not in str(refused.value)
    assert "***" in str(refused.value)

"""Settings: one table read by the command line and by ``--config FILE.toml``.

Every option is described once in :data:`SETTINGS`, with the function that
turns a command-line string or a TOML value into its typed value. The twistd
``Options`` class is generated from the table, and :func:`load_settings`
merges the two sources (the command line wins) and applies typed defaults,
so a default is never left as an unconverted string. Errors name the option.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ministry.core.mirror_config import MirrorConfig, MirrorConfigError, parse_mirror_table
from ministry.core.name_policy import NamePolicy, parse_name_pattern
from ministry.core.setting_values import (
    parse_access_log,
    parse_endpoint,
    parse_flag,
    parse_host,
    parse_redis,
    parse_storage,
    parse_text,
    parse_trusted_proxy,
    parse_uri_prefix,
    parse_url,
)
from ministry.core.units import parse_count, parse_duration, parse_size, parse_timeout


class ConfigError(ValueError):
    """A setting has a bad value; the message names the setting."""


@dataclass(frozen=True)
class Setting:
    """One option: its name on the command line and in the TOML file."""

    name: str
    parse: Callable[[Any], Any]
    help: str
    short: str | None = None
    #: Given any number of times on the command line, a list in the TOML
    #: file; each item goes through ``parse`` and the value is a tuple.
    multiple: bool = False
    #: Takes no value on the command line (``--offline``); a boolean in TOML.
    flag: bool = False
    #: Its key in the TOML file when that reads better than the option's
    #: name: a list of ``reserved`` patterns, one ``--reserve`` at a time.
    file_key: str | None = None

    @property
    def key(self) -> str:
        """How the TOML file names it (``_`` or ``-``)."""
        return self.file_key or self.name

    @property
    def attribute(self) -> str:
        return self.name.replace("-", "_")

    @property
    def default(self) -> Any:
        """The value when neither the command line nor the file sets it: the
        :class:`Settings` field's, the one place defaults are written."""
        return _DEFAULTS[self.attribute]


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "port",
        parse_endpoint,
        "Where to listen: a port number or a strports description "
        "such as tcp:8080:interface=127.0.0.1.",
        "p",
    ),
    Setting(
        "data-dir",
        parse_text,
        "Directory for files and the embedded database; created if missing.",
        "d",
    ),
    Setting(
        "max-upload-size",
        parse_size,
        "Largest distribution file accepted, e.g. 1G or 200M.",
    ),
    Setting(
        "base-url",
        parse_url,
        "Public URL of this index when it is behind a proxy, used in links.",
    ),
    Setting(
        "redis",
        parse_redis,
        "Keep metadata in Redis at this URL (redis://[:password@]host:port/db, "
        "rediss://..., unix:///path/redis.sock?db=N) instead of the embedded database.",
    ),
    Setting(
        "redis-prefix",
        parse_text,
        "Prefix of every Redis key, so several indexes can share one Redis.",
    ),
    Setting(
        "redis-timeout",
        parse_timeout,
        "Longest wait for a Redis reply; past it the request is answered 503.",
    ),
    Setting(
        "storage",
        parse_storage,
        "Where distribution files live: file:DIR, or s3://BUCKET[/PREFIX]?endpoint="
        "http://HOST:PORT[&region=R] with credentials from AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (or the AWS shared-credentials file); with s3, uploaded, "
        "proxied and mirrored files all live in the bucket. Default: file:<data-dir>/files.",
    ),
    Setting(
        "storage-redirect",
        parse_flag,
        "With --storage s3://...: answer downloads with a 302 to a short-lived presigned "
        "URL of the object, so the bytes flow from the object store, not through here.",
        flag=True,
    ),
    Setting(
        "private",
        parse_flag,
        "Reads need credentials too (every page but /health), not only uploads.",
        flag=True,
    ),
    Setting(
        "htpasswd",
        parse_text,
        "An Apache htpasswd file (bcrypt or SHA entries) whose users may log in, "
        "besides those added with ministry-admin; re-read when it changes.",
    ),
    Setting(
        "upstream",
        parse_url,
        "Simple index to proxy for projects not hosted here, e.g. "
        "https://pypi.example.test/simple/ (with user:password@ to log in to it, and to "
        "nothing else); repeat to try several in order.",
        multiple=True,
    ),
    Setting(
        "reserve",
        parse_name_pattern,
        "Names kept for this index, as a glob such as acme-* ('-', '_' and '.' alike): "
        "never fetched from the upstream or mirrored, even before anyone uploads one, and "
        "created only by an administrator; repeatable ('reserved' list in the TOML file).",
        multiple=True,
        file_key="reserved",
    ),
    Setting(
        "upstream-allow",
        parse_name_pattern,
        "Proxy and mirror only the upstream projects whose name matches this glob; "
        "repeatable. Default: every name (but the reserved and denied ones).",
        multiple=True,
    ),
    Setting(
        "upstream-deny",
        parse_name_pattern,
        "Never proxy or mirror the upstream projects whose name matches this glob, "
        "even if upstream-allow does; repeatable.",
        multiple=True,
    ),
    Setting(
        "upstream-redirect-host",
        parse_host,
        "A host an upstream may redirect a page or file request to; repeatable. "
        "Default: none, redirects are followed within the requested host only.",
        multiple=True,
    ),
    Setting(
        "upstream-ttl",
        parse_duration,
        "How long a fetched upstream project page is used before it is revalidated.",
    ),
    Setting(
        "upstream-timeout",
        parse_timeout,
        "Connect timeout, and longest silence while reading, of every upstream request.",
    ),
    Setting(
        "upstream-deadline",
        parse_timeout,
        "Longest an upstream page (or a file's first bytes) may take in all, however it "
        "trickles; past it a cached copy is served, if any.",
    ),
    Setting(
        "upstream-min-rate",
        parse_size,
        "Slowest average rate, in bytes per second, an upstream file may keep up once "
        "--upstream-deadline has passed, e.g. 50K; a slower transfer is cut off.",
    ),
    Setting(
        "upstream-min-age",
        parse_duration,
        "Hide upstream files uploaded more recently than this, e.g. 3d (0: off).",
    ),
    Setting(
        "offline",
        parse_flag,
        "Never contact the upstreams: serve only what is cached.",
        flag=True,
    ),
    Setting(
        "cache-max-size",
        parse_size,
        "Bound on the bytes of cached upstream files, e.g. 50G; least recently "
        "used go first (uploads are never evicted). Default: unbounded.",
    ),
    Setting(
        "page-cache-size",
        parse_size,
        "Bound on the bytes of rendered pages, READMEs and project views kept in "
        "memory, e.g. 512M; least recently used go first.",
    ),
    Setting(
        "x-accel-redirect",
        parse_uri_prefix,
        "Behind nginx: answer file downloads with X-Accel-Redirect: PREFIX<path below "
        "the data directory> and no body, for an internal nginx location at PREFIX "
        "aliased to the data directory, e.g. /_ministry/.",
    ),
    Setting(
        "access-log",
        parse_access_log,
        "Append the access log (combined format) to this file instead of twistd's log, "
        "or 'off' for none (behind nginx, which keeps its own). Either is cheaper per "
        "request than twistd's log. Default: twistd's log.",
    ),
    Setting(
        "header-timeout",
        parse_timeout,
        "Longest a client may take to send a request line and its headers, however it "
        "trickles them; then it is answered 408 and disconnected.",
    ),
    Setting(
        "max-connections",
        parse_count,
        "Most connections open at once, lowered to what the open-file limit (ulimit -n) "
        "leaves after a reserve for files; at the cap the connection waiting longest for "
        "a request is closed to make room.",
    ),
    Setting(
        "max-connections-per-client",
        parse_count,
        "Most connections open at once from one client address; at the cap its connection "
        "waiting longest for a request is closed to make room, and only when all are busy is "
        "a new one answered 503. A trusted proxy's connections are not counted per client.",
    ),
    Setting(
        "trusted-proxy",
        parse_trusted_proxy,
        "Address or network (10.0.0.0/8) of a reverse proxy, or 'unix' for a Unix socket's "
        "peers, whose X-Forwarded-For names the client (for the failed-login throttle and "
        "the access log); repeatable. X-Forwarded-For from other peers is ignored.",
        multiple=True,
    ),
)


@dataclass(frozen=True)
class Settings:
    """The typed, merged settings the service is built from."""

    port: str = "tcp:8080"
    data_dir: str = "ministry-data"
    max_upload_size: int = 1024**3
    base_url: str | None = None
    redis: str | None = None
    redis_prefix: str = "ministry:"
    redis_timeout: float = 5.0
    storage: str | None = None
    storage_redirect: bool = False
    private: bool = False
    htpasswd: str | None = None
    upstream: tuple[str, ...] = ()
    reserve: tuple[str, ...] = ()
    upstream_allow: tuple[str, ...] = ()
    upstream_deny: tuple[str, ...] = ()
    upstream_redirect_host: tuple[str, ...] = ()
    upstream_ttl: float = 600.0
    upstream_timeout: float = 10.0
    upstream_deadline: float = 30.0
    upstream_min_rate: int = 50 * 1024
    upstream_min_age: float = 0.0
    offline: bool = False
    cache_max_size: int | None = None
    page_cache_size: int = 256 * 1024**2
    x_accel_redirect: str | None = None
    access_log: str | None = None
    header_timeout: float = 20.0
    max_connections: int = 1000
    max_connections_per_client: int = 256
    trusted_proxy: tuple[str, ...] = ()

    def name_policy(self) -> NamePolicy:
        """What ``reserve``, ``upstream-allow`` and ``upstream-deny`` say, for the
        proxy, the mirror and the authorisation of new projects."""
        return NamePolicy(self.reserve, self.upstream_allow, self.upstream_deny)


_DEFAULTS: dict[str, Any] = {item.name: item.default for item in fields(Settings)}


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config: {path} is not valid TOML: {exc}") from None


def load_settings(given: Mapping[str, Any], config_file: str | None = None) -> Settings:
    """Merge command-line values (``given``, by option name) over the TOML file.

    ``given`` holds only the options that were actually passed. Raises
    :class:`ConfigError` naming the first bad setting.
    """
    known = {setting.key.replace("_", "-"): setting for setting in SETTINGS}
    from_file: dict[str, Any] = {}
    if config_file:
        for key, value in _read_toml(config_file).items():
            if key == "mirror":  # a table of its own: see load_mirror
                continue
            setting = known.get(key.replace("_", "-"))
            if setting is None:
                raise ConfigError(f"{config_file}: unknown setting {key!r}")
            from_file[setting.name] = value
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        source, raw = (
            (f"--{setting.name}", given[setting.name]) if setting.name in given else ("", None)
        )
        if not source and setting.name in from_file:
            source, raw = f"{config_file}: {setting.key}", from_file[setting.name]
        if not source:
            values[setting.attribute] = setting.default
            continue
        try:
            values[setting.attribute] = _typed(setting, raw)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return Settings(**values)


def load_mirror(config_file: str | None) -> MirrorConfig | None:
    """The config file's ``[mirror]`` table, validated; None when there is none.

    TOML only (a selection does not fit on a command line), so it is kept
    apart from the flat settings. Requirements files are relative to the
    config file. Raises :class:`ConfigError` naming the key.
    """
    if not config_file:
        return None
    table = _read_toml(config_file).get("mirror")
    if table is None:
        return None
    base = os.path.dirname(os.path.abspath(config_file))

    def read_text(path: str) -> str:
        with open(os.path.join(base, path), encoding="utf-8") as handle:
            return handle.read()

    try:
        return parse_mirror_table(table, read_text)
    except MirrorConfigError as exc:
        raise ConfigError(f"{config_file}: {exc}") from None


def _typed(setting: Setting, raw: Any) -> Any:
    """One setting's typed value; a repeatable one takes a list (or one value)."""
    if not setting.multiple:
        return setting.parse(raw)
    return tuple(setting.parse(item) for item in (raw if isinstance(raw, list) else [raw]))

"""Settings from the command line and the TOML file, and their errors."""

from dataclasses import fields

import pytest

from ministry.config import (
    SETTINGS,
    ConfigError,
    Settings,
    load_settings,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1G", 1024**3),
        ("512M", 512 * 1024**2),
        ("50GiB", 50 * 1024**3),
        ("1048576", 1048576),
        ("1.5K", 1536),
        (2048, 2048),
    ],
)
def test_sizes_are_read_with_binary_units(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "-1", "0", "ten", "1Q", True])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", 90), ("10m", 600), ("1h", 3600), ("3d", 259200), ("600", 600), (2.5, 2.5)],
)
def test_durations_are_read_in_seconds(text, expected):
    assert parse_duration(text) == expected


def test_every_setting_has_a_typed_field_with_the_same_default():
    defaults = {field.name: field.default for field in fields(Settings)}
    assert {setting.attribute: setting.default for setting in SETTINGS} == defaults


@pytest.mark.parametrize(
    ("given", "port"),
    [
        ({"port": "8080"}, "tcp:8080"),
        ({"port": "tcp:0:interface=127.0.0.1"}, "tcp:0:interface=127.0.0.1"),
    ],
)
def test_a_bare_port_becomes_a_strports_description(given, port):
    assert load_settings(given).port == port


def test_defaults_are_typed_when_nothing_is_given():
    settings = load_settings({})
    assert settings.max_upload_size == 1024**3
    assert settings.port == "tcp:8080"


def test_the_command_line_wins_over_the_config_file(tmp_path):
    config = tmp_path / "ministry.toml"
    config.write_text('port = 9000\nmax-upload-size = "10M"\ndata_dir = "/srv/x"\n')
    settings = load_settings({"port": "9100"}, str(config))
    assert settings.port == "tcp:9100"
    assert settings.max_upload_size == 10 * 1024**2
    assert settings.data_dir == "/srv/x"


@pytest.mark.parametrize(
    ("given", "toml", "message"),
    [
        ({"max-upload-size": "lots"}, "", "--max-upload-size: expected a size"),
        ({"port": "http:x y"}, "", "--port: expected a port number"),
        ({"base-url": "ftp://x"}, "", "--base-url: expected an http"),
        ({}, "colour = 'blue'\n", "unknown setting 'colour'"),
        ({}, "port = [1\n", "is not valid TOML"),
        ({}, "max-upload-size = -3\n", "max-upload-size: expected a size"),
    ],
)
def test_bad_values_name_the_setting(tmp_path, given, toml, message):
    config = None
    if toml:
        path = tmp_path / "bad.toml"
        path.write_text(toml)
        config = str(path)
    with pytest.raises(ConfigError, match=message):
        load_settings(given, config)


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({}, str(tmp_path / "absent.toml"))


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://:secret@cache.example.test:6380/2",
        "unix:///run/redis.sock?db=3",
    ],
)
def test_redis_urls_are_accepted(url):
    assert load_settings({"redis": url}).redis == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis://host:notaport/0"])
def test_bad_redis_urls_stop_start_up(url):
    with pytest.raises(ConfigError, match="--redis: "):
        load_settings({"redis": url})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("/_ministry/", "/_ministry/"), ("/_ministry", "/_ministry/"), ("/a/b-c.d/", "/a/b-c.d/")],
)
def test_the_x_accel_prefix_is_a_path_ending_in_a_slash(text, expected):
    assert load_settings({"x-accel-redirect": text}).x_accel_redirect == expected


@pytest.mark.parametrize(
    "text", ["_ministry/", "http://host/_ministry/", "/a//b/", "/a/../b/", "/a b/", "/a?x"]
)
def test_bad_x_accel_prefixes_are_refused(text):
    with pytest.raises(ConfigError, match="--x-accel-redirect: expected a path"):
        load_settings({"x-accel-redirect": text})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, None),
        ({"access-log": "off"}, "off"),
        ({"access-log": "OFF"}, "off"),
        ({"access-log": "/var/log/ministry/access.log"}, "/var/log/ministry/access.log"),
        ({"access-log": "access.log"}, "access.log"),
    ],
)
def test_the_access_log_is_twistds_a_file_or_off(given, expected):
    assert load_settings(given).access_log == expected


def test_an_empty_access_log_is_refused():
    with pytest.raises(ConfigError, match="--access-log: must not be empty"):
        load_settings({"access-log": " "})

"""PEP 691 content negotiation, table by table, with the headers real clients send."""

import pytest
from accept_headers import (
    BROWSER,
    CLIENT_CASES,
    CLIENT_PARAMS,
    HTML_V1,
    JSON_V1,
    PIP,
    TEXT_HTML,
    UV,
)

from ministry.core import negotiate
from ministry.core.errors import NotAcceptable
from ministry.core.negotiate import choose, from_browser, parse_accept


def test_the_offered_types_are_pep_691s():
    """The tables below spell the media types out; the code must use the same strings."""
    assert (negotiate.JSON_V1, negotiate.HTML_V1, negotiate.TEXT_HTML) == (
        JSON_V1,
        HTML_V1,
        TEXT_HTML,
    )


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        *CLIENT_CASES,
        pytest.param(JSON_V1, JSON_V1, id="json-only"),
        pytest.param(HTML_V1, HTML_V1, id="html-v1-only"),
        pytest.param(f"{TEXT_HTML};q=0, {JSON_V1}", JSON_V1, id="html-refused-json-named"),
        pytest.param(f"{TEXT_HTML};q=0, */*", HTML_V1, id="html-refused-wildcard"),
        pytest.param(f"{JSON_V1};q=0, */*", TEXT_HTML, id="json-refused-wildcard"),
        pytest.param(f"{JSON_V1};q=0.5, {TEXT_HTML}", TEXT_HTML, id="q-beats-preference"),
        pytest.param(f"{TEXT_HTML};q=0.01, {HTML_V1};q=0.2, {JSON_V1}", JSON_V1, id="warehouse"),
        pytest.param(f"{TEXT_HTML}, {HTML_V1}, {JSON_V1}", JSON_V1, id="tie-all-named"),
        pytest.param(f"{TEXT_HTML}, {HTML_V1}", HTML_V1, id="tie-html-named"),
        pytest.param(f"{TEXT_HTML}, */*", TEXT_HTML, id="tie-named-beats-wildcard"),
        pytest.param(f"*/*, {JSON_V1}", JSON_V1, id="tie-named-json-beats-wildcard"),
        pytest.param(f"{JSON_V1};q=0.5, {HTML_V1};q=0.5", JSON_V1, id="tie-at-lower-q"),
        pytest.param("application/*", HTML_V1, id="application-wildcard"),
        pytest.param("text/*", TEXT_HTML, id="text-wildcard"),
        pytest.param(f"application/*;q=0.9, {TEXT_HTML};q=0.1", HTML_V1, id="wildcard-higher-q"),
        pytest.param("TEXT/HTML", TEXT_HTML, id="case-insensitive"),
        pytest.param(f"{JSON_V1};charset=utf-8", JSON_V1, id="extra-parameter"),
        pytest.param(f"{JSON_V1} ; Q=0.3 , {TEXT_HTML};q=0.2", JSON_V1, id="spaces-upper-q"),
    ],
)
def test_choose(accept, expected):
    assert choose(accept) == expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        pytest.param("", TEXT_HTML, id="empty-is-no-preference"),
        pytest.param(",,,;;;", TEXT_HTML, id="only-separators"),
        pytest.param("garbage", TEXT_HTML, id="no-slash"),
        pytest.param(f"{JSON_V1};q=abc, {TEXT_HTML}", TEXT_HTML, id="bad-q-dropped"),
        pytest.param(f"{JSON_V1};q=2, {TEXT_HTML}", TEXT_HTML, id="q-above-one-dropped"),
        pytest.param(f"{JSON_V1};q=-1, {TEXT_HTML}", TEXT_HTML, id="negative-q-dropped"),
        pytest.param(f"{JSON_V1};q=nan, {TEXT_HTML}", TEXT_HTML, id="nan-q-dropped"),
        pytest.param(f"*/json, {JSON_V1}", JSON_V1, id="wildcard-type-named-subtype"),
        pytest.param(f"te xt/html, {JSON_V1}", JSON_V1, id="space-in-token"),
        pytest.param(f"/, {JSON_V1}", JSON_V1, id="empty-type"),
        pytest.param(f"\x00\xff/\u2603, {JSON_V1}", JSON_V1, id="binary-junk"),
        pytest.param("a" * 100_000, TEXT_HTML, id="huge-token"),
    ],
)
def test_garbage_does_not_crash(accept, expected):
    """An unparsable part counts as absent; an all-garbage header as no header."""
    assert choose(accept) == expected


@pytest.mark.parametrize(
    "accept",
    [
        pytest.param("application/json", id="plain-json"),
        pytest.param("image/png", id="image"),
        pytest.param(f"{JSON_V1};q=0, {HTML_V1};q=0, {TEXT_HTML};q=0", id="all-refused"),
        pytest.param("*/*;q=0", id="wildcard-refused"),
        pytest.param(f"text/*, {TEXT_HTML};q=0", id="specific-refusal-beats-wildcard"),
    ],
)
def test_not_acceptable(accept):
    with pytest.raises(NotAcceptable) as caught:
        choose(accept)
    assert caught.value.status == 406
    for offered in (JSON_V1, HTML_V1, TEXT_HTML):
        assert offered in caught.value.message


@pytest.mark.parametrize(
    ("accept", "format_param", "expected"),
    [
        pytest.param(PIP, TEXT_HTML, TEXT_HTML, id="format-overrides-pip"),
        pytest.param(BROWSER, JSON_V1, JSON_V1, id="format-overrides-browser"),
        pytest.param("application/json", HTML_V1, HTML_V1, id="format-rescues-406"),
        pytest.param(None, JSON_V1, JSON_V1, id="format-without-header"),
        pytest.param(None, " Application/VND.pypi.simple.v1+JSON ", JSON_V1, id="format-case"),
        pytest.param(PIP, "", JSON_V1, id="empty-format-ignored"),
        pytest.param(PIP, None, JSON_V1, id="no-format"),
    ],
)
def test_format_param(accept, format_param, expected):
    assert choose(accept, format_param) == expected


@pytest.mark.parametrize("format_param", ["json", "application/json", "text/*", "*/*", "html"])
def test_format_param_must_name_an_offer(format_param):
    with pytest.raises(NotAcceptable) as caught:
        choose(PIP, format_param)
    assert format_param in caught.value.message


def test_refusal_message_is_safe_for_a_status_line():
    """A hostile ?format= must not smuggle CR/LF or kilobytes into the status line."""
    with pytest.raises(NotAcceptable) as caught:
        choose(None, "x\r\nSet-Cookie: a=b" + "y" * 10_000)
    assert "\r" not in caught.value.message
    assert "\n" not in caught.value.message
    assert len(caught.value.message) < 500


def test_parse_accept_keeps_order_and_q():
    ranges = parse_accept(UV)
    assert [(r.type, r.subtype, r.q) for r in ranges] == [
        ("application", "vnd.pypi.simple.v1+json", 1.0),
        ("application", "vnd.pypi.simple.v1+html", 0.2),
        ("text", "html", 0.01),
    ]


@pytest.mark.parametrize("client", CLIENT_PARAMS)
def test_only_a_browser_is_taken_for_a_person(client):
    """``/<name>/`` serves the project page to browsers and the simple page to every tool."""
    assert from_browser(client.accept) is client.person


@pytest.mark.parametrize(
    ("accept", "person"),
    [
        pytest.param("application/xhtml+xml;q=0, text/html", False, id="xhtml-refused"),
        pytest.param("APPLICATION/XHTML+XML", True, id="case-insensitive"),
        pytest.param("text/html,application/xhtml+xml;q=bad", False, id="garbage-q"),
    ],
)
def test_from_browser_edge_cases(accept, person):
    assert from_browser(accept) is person


#: A page with an HTML and a JSON form (``/mirror/``): JSON only when asked for.
STATUS_FORMS = (
    (negotiate.APPLICATION_JSON, TEXT_HTML),
    (TEXT_HTML, negotiate.APPLICATION_JSON),
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        pytest.param(BROWSER, TEXT_HTML, id="browser"),
        pytest.param("*/*", TEXT_HTML, id="curl"),
        pytest.param(None, TEXT_HTML, id="none"),
        pytest.param(PIP, TEXT_HTML, id="pip"),
        pytest.param("application/json", "application/json", id="json-tool"),
        pytest.param("text/html;q=0.5, application/json", "application/json", id="json-by-q"),
        pytest.param("application/json, text/html", "application/json", id="json-named-first"),
        pytest.param("text/html, application/json", "application/json", id="json-at-a-tie"),
    ],
)
def test_choose_among_a_status_pages_forms(accept, expected):
    assert negotiate.choose_among(accept, *STATUS_FORMS) == expected


def test_choose_among_refuses_with_the_offers_named():
    with pytest.raises(NotAcceptable) as refused:
        negotiate.choose_among("image/png", *STATUS_FORMS)
    assert "application/json, text/html" in str(refused.value)

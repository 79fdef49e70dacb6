"""The Apache-style listing: sort parameters, sorting, sizes, and the page tools read."""

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import unquote, urljoin

import pytest
from html_page import links, parse_page

from ministry.core.listing import (
    Entry,
    format_modified,
    format_size,
    parse_sort,
    render_listing,
    sort_entries,
)

HOSTILE = '"><script>alert(1)</script>&.whl'


def at(day, hour=0):
    return datetime(2024, 1, day, hour, 0, tzinfo=UTC)


ENTRIES = [
    Entry("beta-1.0.tar.gz", False, 5_000, at(3)),
    Entry("alpha", True, None, at(2)),
    Entry("Zeta-2.0-py3-none-any.whl", False, 100, at(4)),
    Entry("gamma-0.1.zip", False, 5_000, at(1)),
    Entry("delta", True, None, at(4)),
]


def rows(body: bytes) -> list[tuple[str, str]]:
    """The entry rows as (href, text): every link but the column headers' ``?C=`` ones."""
    return [(link.href, link.text) for link in links(body) if not link.href.startswith("?")]


def cells(body: bytes) -> list[list[str]]:
    """The text of every table cell, row by row."""
    page = parse_page(body)
    table: list[list[str]] = []
    for element in page.elements:
        if element.tag == "tr":
            table.append([])
        elif element.tag in ("td", "th") and table:
            table[-1].append(element.text)
    return table


# -- query parsing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("", ("N", "A"), id="empty"),
        pytest.param("C=N;O=D", ("N", "D"), id="apache-semicolons"),
        pytest.param("C=M;O=A", ("M", "A"), id="modified"),
        pytest.param("C=S;O=D", ("S", "D"), id="size-descending"),
        pytest.param("C=D;O=A", ("D", "A"), id="description"),
        pytest.param("C=S&O=D", ("S", "D"), id="ampersands"),
        pytest.param("O=D", ("N", "D"), id="order-only"),
        pytest.param("C=M", ("M", "A"), id="column-only"),
        pytest.param("c=m;o=d", ("M", "D"), id="lower-case"),
        pytest.param("C=X;O=D", ("N", "D"), id="bad-column-kept-default"),
        pytest.param("C=M;O=Z", ("M", "A"), id="bad-order-kept-default"),
        pytest.param("C=;O=", ("N", "A"), id="empty-values"),
        pytest.param("C=MM;O=DD", ("N", "A"), id="long-values"),
        pytest.param(";;&&==", ("N", "A"), id="separators-only"),
        pytest.param("\x00\ufffd=%;C", ("N", "A"), id="junk"),
        pytest.param("C=N;O=D;F=2;V=1;P=*.whl", ("N", "D"), id="other-apache-options"),
        pytest.param("C=S;O=D;C=M", ("M", "D"), id="last-wins"),
    ],
)
def test_parse_sort_string(query, expected):
    assert parse_sort(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({}, ("N", "A"), id="empty"),
        pytest.param({"C": ["M"], "O": ["D"]}, ("M", "D"), id="ampersand-style"),
        # parse_qs("C=S;O=D") keeps the semicolon inside the value.
        pytest.param({"C": ["S;O=D"]}, ("S", "D"), id="parse-qs-of-apache-style"),
        pytest.param({"C": ["Q"], "O": ["D", "A"]}, ("N", "A"), id="repeated-last-wins"),
        pytest.param({"other": ["1"]}, ("N", "A"), id="unrelated"),
    ],
)
def test_parse_sort_parsed(query, expected):
    assert parse_sort(query) == expected


# -- sorting --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "order", "expected"),
    [
        pytest.param(
            "N",
            "A",
            ["Zeta-2.0-py3-none-any.whl", "alpha", "beta-1.0.tar.gz", "delta", "gamma-0.1.zip"],
            id="name-ascending",
        ),
        pytest.param(
            "N",
            "D",
            ["gamma-0.1.zip", "delta", "beta-1.0.tar.gz", "alpha", "Zeta-2.0-py3-none-any.whl"],
            id="name-descending",
        ),
        pytest.param(
            "M",
            "A",
            ["gamma-0.1.zip", "alpha", "beta-1.0.tar.gz", "Zeta-2.0-py3-none-any.whl", "delta"],
            id="modified-ascending-name-breaks-tie",
        ),
        pytest.param(
            "M",
            "D",
            ["delta", "Zeta-2.0-py3-none-any.whl", "beta-1.0.tar.gz", "alpha", "gamma-0.1.zip"],
            id="modified-descending",
        ),
        pytest.param(
            "S",
            "A",
            ["alpha", "delta", "Zeta-2.0-py3-none-any.whl", "beta-1.0.tar.gz", "gamma-0.1.zip"],
            id="size-ascending-dirs-first",
        ),
        pytest.param(
            "S",
            "D",
            ["gamma-0.1.zip", "beta-1.0.tar.gz", "Zeta-2.0-py3-none-any.whl", "delta", "alpha"],
            id="size-descending-dirs-last",
        ),
        pytest.param(
            "D",
            "A",
            ["Zeta-2.0-py3-none-any.whl", "alpha", "beta-1.0.tar.gz", "delta", "gamma-0.1.zip"],
            id="description-is-name",
        ),
    ],
)
def test_sort_entries(column, order, expected):
    assert [entry.name for entry in sort_entries(ENTRIES, column, order)] == expected


def test_unknown_modified_sorts_oldest():
    entries = [Entry("b", False, 1, at(1)), Entry("a", False, 1, None)]
    assert [e.name for e in sort_entries(entries, "M", "A")] == ["a", "b"]


def test_sort_accepts_any_iterable():
    assert sort_entries(iter(ENTRIES), "N", "A")[0].name == "Zeta-2.0-py3-none-any.whl"


# -- entries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "href"),
    [
        pytest.param(Entry("foo-1.0.tar.gz", False, 1, None), "foo-1.0.tar.gz", id="file"),
        pytest.param(Entry("foo", True, None, None), "foo/", id="dir"),
        pytest.param(Entry("a b#c?d.whl", False, 1, None), "a%20b%23c%3Fd.whl", id="quoted"),
        pytest.param(Entry("c:evil", False, 1, None), "c%3Aevil", id="not-a-scheme"),
        pytest.param(Entry("sub/../x", False, 1, None), "sub%2F..%2Fx", id="slash-quoted"),
        pytest.param(Entry("naïve", True, None, None), "na%C3%AFve/", id="non-ascii"),
        pytest.param(Entry("x", False, 1, None, href="../x?y"), "../x?y", id="explicit"),
    ],
)
def test_entry_href(entry, href):
    assert entry.href == href


# -- sizes and times ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, "-"),
        (-1, "-"),
        (0, "0"),
        (972, "972"),
        (973, "1.0K"),
        (1024, "1.0K"),
        (1229, "1.2K"),
        (1536, "1.5K"),
        (10 * 1024 - 1, "10K"),
        (10 * 1024, "10K"),
        (999 * 1024, "1.0M"),
        (3_565_158, "3.4M"),
        (150 * 1024 * 1024, "150M"),
        (5 * 1024**3, "5.0G"),
        (2 * 1024**4, "2.0T"),
    ],
)
def test_format_size(size, text):
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (None, ""),
        (datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC), "2024-02-03 04:05"),
        (datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5))), "2024-02-03 09:05"),
        (datetime(2024, 2, 3, 4, 5, 6), "2024-02-03 04:05"),
    ],
)
def test_format_modified(moment, text):
    assert format_modified(moment) == text


# -- the page -------------------------------------------------------------------------


def render(entries=ENTRIES, column="N", order="A", show_parent=True, path="/packages/foo/"):
    return render_listing(path, sort_entries(entries, column, order), column, order, show_parent)


def test_page_title_and_heading():
    page = parse_page(render())
    assert page.title == "Index of /packages/foo/"
    assert [h1.text for h1 in page.all("h1")] == ["Index of /packages/foo/"]


@pytest.mark.parametrize(
    ("column", "order", "header_links"),
    [
        ("N", "A", ["?C=N;O=D", "?C=M;O=A", "?C=S;O=A"]),
        ("N", "D", ["?C=N;O=A", "?C=M;O=A", "?C=S;O=A"]),
        ("M", "A", ["?C=N;O=A", "?C=M;O=D", "?C=S;O=A"]),
        ("S", "D", ["?C=N;O=A", "?C=M;O=A", "?C=S;O=A"]),
        ("D", "A", ["?C=N;O=A", "?C=M;O=A", "?C=S;O=A"]),
    ],
)
def test_header_links_toggle_the_active_column(column, order, header_links):
    hrefs = parse_page(render(column=column, order=order)).hrefs()
    assert [href for href in hrefs if href.startswith("?")] == header_links


@pytest.mark.parametrize("show_parent", [True, False])
def test_parent_link(show_parent):
    listed = rows(render(show_parent=show_parent))
    assert (("../", "Parent Directory") in listed) is show_parent
    if show_parent:
        assert listed[0] == ("../", "Parent Directory")


def test_rows_follow_the_given_order():
    assert rows(render(column="S", order="D", show_parent=False)) == [
        ("gamma-0.1.zip", "gamma-0.1.zip"),
        ("beta-1.0.tar.gz", "beta-1.0.tar.gz"),
        ("Zeta-2.0-py3-none-any.whl", "Zeta-2.0-py3-none-any.whl"),
        ("delta/", "delta/"),
        ("alpha/", "alpha/"),
    ]


def test_row_cells():
    body = render([Entry("x-1.0.tar.gz", False, 1536, at(5, 13))], show_parent=False)
    assert rows(body) == [("x-1.0.tar.gz", "x-1.0.tar.gz")]
    assert ["x-1.0.tar.gz", "2024-01-05 13:00", "1.5K"] in cells(body)


def test_directory_size_is_a_dash():
    body = render([Entry("sub", True, 4096, at(5))], show_parent=False)
    assert ["sub/", "2024-01-05 00:00", "-"] in cells(body)


def test_hrefs_stay_below_the_listing():
    """``wget -r -np`` and ``pip --find-links`` resolve hrefs against the page URL."""
    names = ["a b.whl", "c:d.tar.gz", "//evil.example/x.whl", "...", "?C=N", "#x", "sub"]
    entries = [Entry(name, name == "sub", 1, at(1)) for name in names]
    base = "http://index.example/packages/foo/"
    for href in parse_page(render(entries, show_parent=False)).hrefs():
        resolved = urljoin(base, href)
        assert resolved.startswith(base), (href, resolved)


def test_directory_hrefs_end_in_slash():
    listed = rows(render(show_parent=False))
    assert {href for href, _ in listed if href.endswith("/")} == {"alpha/", "delta/"}


def test_hostile_names_are_escaped_and_quoted():
    body = render([Entry(HOSTILE, False, 1, at(1)), Entry(HOSTILE, True, None, None)])
    assert b"<script>" not in body
    listed = rows(body)
    assert (unquote(listed[1][0]), listed[1][1]) == (HOSTILE, HOSTILE)
    assert (unquote(listed[2][0]), listed[2][1]) == (HOSTILE + "/", HOSTILE + "/")


def test_hostile_title_is_escaped():
    body = render(path="/packages/<script>/")
    assert b"<script>" not in body
    assert parse_page(body).title == "Index of /packages/<script>/"


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_names_no_url_can_reach_are_refused(name):
    with pytest.raises(ValueError):
        Entry(name, True, None, None)


def test_explicit_href_is_escaped():
    body = render([Entry("x", False, 1, None, href='x"><script>')], show_parent=False)
    assert b"<script>" not in body
    assert rows(body) == [('x"><script>', "x")]


def test_empty_listing():
    assert rows(render([], show_parent=False)) == []

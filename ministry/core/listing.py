"""A generic directory listing in the manner of Apache's mod_autoindex.

Nothing here knows about packages: the web layer turns whatever it lists
(projects, files) into :class:`Entry` values. The page copies Apache's
FancyIndexing table because people and tools already know it: the ``?C=…;O=…``
sort links, the ``Parent Directory`` row, the ``1.2K`` sizes. Tools rely on
two properties: every href is relative and percent-quoted, so ``wget -r -np``
stays below the starting point, and directories end in ``/``; and every file
is a plain ``<a href>`` whose text is its name, so ``pip download
--find-links`` finds distributions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

#: Apache's sort columns: Name, last Modified, Size, Description.
COLUMNS = ("N", "M", "S", "D")
ORDERS = ("A", "D")
DEFAULT_SORT = ("N", "A")

_HEADERS = (("N", "Name"), ("M", "Last modified"), ("S", "Size"))
_UNITS = "KMGTPE"
_UNNAMEABLE = ("", ".", "..")


@dataclass(frozen=True)
class Entry:
    """One row of a listing: a file or a directory."""

    name: str
    is_dir: bool
    size: int | None
    modified: datetime | None
    #: Where the row links to; by default the quoted name, plus "/" for a directory.
    href: str | None = None

    def __post_init__(self) -> None:
        # No URL path segment can name these: "." and ".." always resolve to
        # this listing or its parent, and "" to the listing itself.
        if self.name in _UNNAMEABLE:
            raise ValueError(f"not an entry name: {self.name!r}")
        if self.href is None:
            default = quote(self.name, safe="") + ("/" if self.is_dir else "")
            object.__setattr__(self, "href", default)


def parse_sort(query: dict[str, list[str]] | str) -> tuple[str, str]:
    """The (column, order) asked for by Apache's ``C=`` and ``O=`` parameters.

    Apache separates them with ``;`` (``?C=M;O=D``), which ``parse_qs`` does
    not split, so a parsed query is flattened back to pairs and re-split.
    Anything unrecognised leaves that half of the default in place.
    """
    column, order = DEFAULT_SORT
    for key, value in _pairs(query):
        if key == "C" and value in COLUMNS:
            column = value
        elif key == "O" and value in ORDERS:
            order = value
    return column, order


def sort_entries(entries: Iterable[Entry], column: str, order: str) -> list[Entry]:
    """Entries sorted as Apache does: files and directories mixed, by one column.

    The name breaks ties, and ``O=D`` reverses the whole order. Apache counts
    a directory's size as -1, so directories lead an ascending size sort.
    There are no descriptions, so ``C=D`` orders by name alone.
    """
    return sorted(
        entries,
        key=lambda entry: (_column_value(entry, column), entry.name),
        reverse=order == "D",
    )


def render_listing(
    title_path: str,
    entries: Iterable[Entry],
    column: str,
    order: str,
    show_parent: bool,
    head: str = "",
    header: str = "",
) -> bytes:
    """The listing page for ``title_path`` with ``entries`` in the order given.

    ``column`` and ``order`` only decide the header links (the active column's
    link flips the order); the caller sorts with :func:`sort_entries`.
    ``head`` (e.g. a stylesheet link) and ``header`` (the site's navigation)
    are HTML the caller made, put before the title and the table; the table
    itself stays Apache's, for the tools that read it.
    """
    title = escape(f"Index of {title_path}")
    rows = [_header_row(column, order), _RULE]
    if show_parent:
        rows.append(_PARENT_ROW)
    rows.extend(_row(entry) for entry in entries)
    rows.append(_RULE)
    page = [
        "<!DOCTYPE html>\n<html>\n<head>\n",
        '<meta charset="utf-8">\n',
        head,
        f"<title>{title}</title>\n</head>\n<body>\n",
        header,
        f"<h1>{title}</h1>\n<table>\n",
        *rows,
        "</table>\n</body>\n</html>\n",
    ]
    return "".join(page).encode("utf-8")


def format_size(size: int | None) -> str:
    """A size as Apache prints it (``apr_strfsize``): ``512``, ``1.2K``, ``34M``, ``-``.

    Below 973 bytes the exact count; above, 1024-based units with one decimal
    under ten and none from ten up.
    """
    if size is None or size < 0:
        return "-"
    if size < 973:
        return str(size)
    for unit in _UNITS:
        remain = size & 1023
        size >>= 10
        if size >= 973:
            continue
        if size < 9 or (size == 9 and remain < 973):
            tenths = (remain * 5 + 256) // 512
            if tenths >= 10:
                size, tenths = size + 1, 0
            return f"{size}.{tenths}{unit}"
        if remain >= 512:
            size += 1
        return f"{size}{unit}"
    return f"{size}{_UNITS[-1]}"


def format_modified(moment: datetime | None) -> str:
    """``YYYY-MM-DD HH:MM`` in UTC, Apache's column format; empty when unknown."""
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


_RULE = '<tr><th colspan="3"><hr></th></tr>\n'
_PARENT_ROW = (
    '<tr><td><a href="../">Parent Directory</a></td><td></td><td align="right">-</td></tr>\n'
)


def _header_row(column: str, order: str) -> str:
    """Column headers linking to each sort; the active one links to its reverse."""
    cells = []
    for code, label in _HEADERS:
        next_order = "D" if code == column and order == "A" else "A"
        cells.append(f'<th><a href="?C={code};O={next_order}">{label}</a></th>')
    return f"<tr>{''.join(cells)}</tr>\n"


def _row(entry: Entry) -> str:
    href = escape(entry.href or "")
    name = escape(entry.name + ("/" if entry.is_dir else ""))
    size = "-" if entry.is_dir else format_size(entry.size)
    return (
        f'<tr><td><a href="{href}">{name}</a></td>'
        f'<td align="right">{format_modified(entry.modified)}</td>'
        f'<td align="right">{size}</td></tr>\n'
    )


def _pairs(query: dict[str, list[str]] | str) -> list[tuple[str, str]]:
    """``key=value`` pairs from a raw query string or a parsed one, split on ``;`` too."""
    if isinstance(query, dict):
        query = "&".join(f"{key}={value}" for key, values in query.items() for value in values)
    pairs = []
    for item in query.replace(";", "&").split("&"):
        key, _, value = item.partition("=")
        pairs.append((key.strip().upper(), value.strip().upper()))
    return pairs


def _column_value(entry: Entry, column: str) -> float:
    """What ``column`` sorts ``entry`` by, before the name.

    Unknown times sort as the oldest; directories and unknown sizes as -1,
    Apache's size for a directory. Name and description sorts have only the
    name to go by.
    """
    if column == "M":
        return entry.modified.timestamp() if entry.modified is not None else float("-inf")
    if column == "S":
        return -1 if entry.is_dir or entry.size is None else entry.size
    return 0

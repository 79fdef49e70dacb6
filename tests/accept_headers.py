"""The ``Accept`` headers real clients send for a simple-API page, and what each must get.

One table for every negotiation test (the core's ``choose``, the Site in
memory, a real daemon), so that each client's header is written down once,
with where it was read from, and a test of "what pip gets" means the same
header everywhere. The media types are spelled out here, as PEP 691 does,
rather than imported from the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"

# pip >= 22.2, src/pip/_internal/index/collector.py (_get_simple_response).
PIP = f"{JSON_V1}, {HTML_V1}; q=0.1, {TEXT_HTML}; q=0.01"
# uv, crates/uv-client/src/registry_client.rs (MediaType::accepts).
UV = f"{JSON_V1}, {HTML_V1};q=0.2, {TEXT_HTML};q=0.01"
# poetry's PyPiRepository (src/poetry/repositories/pypi_repository.py) asks for JSON only.
POETRY = JSON_V1
# poetry <= 2.2's LegacyRepository (every private source) sets no Accept of its own:
# requests sends its default "*/*", and poetry parses the body as HTML.
POETRY_LEGACY = "*/*"
# pdm, through unearth's src/unearth/collector.py (_get_html_response): pip's header.
PDM = f"{JSON_V1}, {HTML_V1}; q=0.1, {TEXT_HTML}; q=0.01"
# Chrome / Firefox page navigation.
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
# curl and wget send "*/*".
CURL = "*/*"
# pip < 22.2, before PEP 691.
OLD_PIP = TEXT_HTML


@dataclass(frozen=True)
class Client:
    """A client's ``Accept`` (None: it sends no header) and the format it must be served.

    ``person``: a browser, which gets the project page at ``/<name>/`` where
    every tool gets the simple page.
    """

    name: str
    accept: str | None
    gets: str
    person: bool = False

    def headers(self) -> dict[str, str]:
        """The request headers that carry this client's ``Accept``."""
        return {"Accept": self.accept} if self.accept is not None else {}


#: Installers get JSON when they ask for it; anything else gets plain text/html,
#: which every HTML client (old pip, poetry's legacy source, browsers) reads.
CLIENTS = (
    Client("pip", PIP, JSON_V1),
    Client("uv", UV, JSON_V1),
    Client("poetry", POETRY, JSON_V1),
    Client("poetry-legacy", POETRY_LEGACY, TEXT_HTML),
    Client("pdm", PDM, JSON_V1),
    Client("browser", BROWSER, TEXT_HTML, person=True),
    Client("curl", CURL, TEXT_HTML),
    Client("old-pip", OLD_PIP, TEXT_HTML),
    Client("none", None, TEXT_HTML),
)

#: The table as ``(accept, gets)`` cases for ``pytest.mark.parametrize``, one id per client.
CLIENT_CASES = [pytest.param(client.accept, client.gets, id=client.name) for client in CLIENTS]
#: The table as ``client`` cases, for tests that need more than the header and the format.
CLIENT_PARAMS = [pytest.param(client, id=client.name) for client in CLIENTS]

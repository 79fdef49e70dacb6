"""Real clients against a real daemon: twine, pip, uv, distutils, a crawler.

Each client runs in a subprocess with :func:`servers.client_env` (no user
configuration, no inherited index, a throw-away HOME), and every index URL
points at the daemon on 127.0.0.1: nothing reaches another host. One
daemon serves the whole module; the tests that write to it use their own
project names, or leave it as they found it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from accept_headers import JSON_V1, TEXT_HTML
from accept_headers import PIP as PIP_ACCEPT
from accept_headers import UV as UV_ACCEPT
from archive_factory import make_sdist, sdist_filename
from html_page import links as links_of
from servers import MinistryProcess, build_sample_project, client_env

pytestmark = pytest.mark.e2e

PROJECT = "ministry-sample"
#: Exactly what distutils' ``upload`` command used as its multipart boundary.
DISTUTILS_BOUNDARY = "--------------GHSKFJDLGDS7543FJKLFHRE75642756743254"


PIP = (sys.executable, "-m", "pip")
UV = (sys.executable, "-m", "uv")

# Helpers.


def twine_upload_command(server: MinistryProcess, files: Sequence[Path]) -> list[str]:
    return [
        *(sys.executable, "-m", "twine", "upload", "--repository-url", f"{server.url}/"),
        *("-u", "any", "-p", "any", "--non-interactive", "--disable-progress-bar"),
        *map(str, files),
    ]


def run(
    args: Sequence[str], env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess:
    """Run a client; the result's ``output`` attribute is stdout and stderr together."""
    result = subprocess.run(
        list(args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    result.output = f"$ {' '.join(args)}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    return result


def fetch(url: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` without following redirects: (status, lower-cased headers, body)."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    return status, {key.lower(): value for key, value in headers.items()}, body


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def simple_json(server: MinistryProcess, project: str) -> dict:
    status, headers, body = fetch(f"{server.url}/simple/{project}/", JSON_V1)
    assert status == 200, body
    assert headers["content-type"] == JSON_V1
    return json.loads(body)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sample_files(sample_dists: dict[str, dict[str, Path]]) -> list[Path]:
    return [dists[kind] for dists in sample_dists.values() for kind in ("wheel", "sdist")]


def access_lines(log: str, path_fragment: str) -> list[str]:
    """The access-log lines of requests whose path contains ``path_fragment``."""
    return [line for line in log.splitlines() if f" {path_fragment}" in line and "HTTP/1.1" in line]


# Fixtures: one daemon for the module, the sample project uploaded once.


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return client_env(tmp_path_factory.mktemp("client-home"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    with MinistryProcess(tmp_path_factory.mktemp("e2e") / "data") as process:
        yield process


@pytest.fixture(scope="module")
def twine_upload(
    server: MinistryProcess, sample_dists: dict[str, dict[str, Path]], env: dict[str, str]
) -> subprocess.CompletedProcess:
    """``twine upload`` of ministry-sample 1.0 and 1.1 (wheels and sdists)."""
    return run(
        twine_upload_command(server, sample_files(sample_dists)),
        env,
    )


@pytest.fixture(scope="module")
def uploaded(twine_upload: subprocess.CompletedProcess) -> None:
    """For tests that need the sample project on the index."""
    if twine_upload.returncode != 0:
        pytest.fail(f"the module's twine upload failed:\n{twine_upload.output}")


# twine.


def test_twine_upload_publishes_every_file(
    server: MinistryProcess, twine_upload: subprocess.CompletedProcess, sample_dists
) -> None:
    assert twine_upload.returncode == 0, twine_upload.output
    files = {path.name: path for path in sample_files(sample_dists)}

    # PEP 691 JSON: every file, with its sha256, size, Requires-Python, metadata.
    page = simple_json(server, PROJECT)
    assert page["name"] == PROJECT
    assert set(page["versions"]) == {"1.0", "1.1"}
    listed = {entry["filename"]: entry for entry in page["files"]}
    assert set(listed) == set(files)
    for filename, entry in listed.items():
        assert entry["hashes"]["sha256"] == sha256(files[filename])
        assert entry["size"] == files[filename].stat().st_size
        assert entry["requires-python"] == ">=3.8"
        url = urljoin(f"{server.url}/simple/{PROJECT}/", entry["url"])
        status, headers, body = fetch(url)
        assert status == 200 and body == files[filename].read_bytes(), filename
        assert "content-encoding" not in headers
        if filename.endswith(".whl"):
            meta_status, _, metadata = fetch(url + ".metadata")
            assert meta_status == 200
            assert entry["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
            assert b"Requires-Python: >=3.8" in metadata

    # PEP 503 HTML: one link per file with its hash and escaped Requires-Python.
    status, headers, html = fetch(f"{server.url}/simple/{PROJECT}/", TEXT_HTML)
    assert status == 200 and headers["content-type"].startswith("text/html")
    links = {unquote(urlsplit(link.href).path.rsplit("/", 1)[-1]): link for link in links_of(html)}
    assert set(links) == set(files)
    for filename, link in links.items():
        assert link.href.endswith(f"#sha256={sha256(files[filename])}")
        assert link["data-requires-python"] == ">=3.8"
    assert b'data-requires-python="&gt;=3.8"' in html

    # The Apache-style listing shows the same files.
    status, _, listing = fetch(f"{server.url}/packages/{PROJECT}/")
    assert status == 200
    hrefs = {unquote(link.href) for link in links_of(listing)}
    assert set(files) <= hrefs

    # The JSON API: both releases, 1.1 the latest, the README as description.
    status, _, body = fetch(f"{server.url}/pypi/{PROJECT}/json")
    assert status == 200
    info = json.loads(body)
    assert info["info"]["version"] == "1.1"
    assert info["info"]["requires_python"] == ">=3.8"
    assert "MinistryOfPackages" in info["info"]["description"]
    assert set(info["releases"]) == {"1.0", "1.1"}
    released = {f["filename"]: f["digests"]["sha256"] for r in info["releases"].values() for f in r}
    assert released == {name: sha256(path) for name, path in files.items()}
    assert {f["filename"] for f in info["urls"]} == {
        path.name for path in sample_files({"1.1": sample_dists["1.1"]})
    }


def test_twine_reupload_of_identical_files_succeeds(
    server: MinistryProcess, uploaded: None, sample_dists, env: dict[str, str]
) -> None:
    before = simple_json(server, PROJECT)["files"]
    mark = server.log_size()
    result = run(
        twine_upload_command(server, sample_files(sample_dists)),
        env,
    )
    assert result.returncode == 0, result.output
    posts = [line for line in server.log_since(mark).splitlines() if '"POST / HTTP/1.1"' in line]
    assert len(posts) == 4 and all('"POST / HTTP/1.1" 200' in line for line in posts), posts
    assert simple_json(server, PROJECT)["files"] == before


def test_twine_conflicting_upload_is_refused_with_409(
    server: MinistryProcess, uploaded: None, sample_dists, env: dict[str, str], tmp_path: Path
) -> None:
    original = sample_dists["1.0"]["wheel"]
    impostor = build_sample_project(
        tmp_path, PROJECT, "1.0", requires_python=">=3.8", marker="other contents"
    )["wheel"]
    assert impostor.name == original.name
    assert impostor.read_bytes() != original.read_bytes()

    result = run(
        twine_upload_command(server, [impostor]),
        env,
    )
    assert result.returncode != 0, result.output
    assert "File already exists" in result.output
    assert "409" in result.output
    # The index still serves the original bytes under that name.
    status, _, body = fetch(f"{server.url}/packages/{PROJECT}/{original.name}")
    assert status == 200 and body == original.read_bytes()
    listed = {f["filename"]: f for f in simple_json(server, PROJECT)["files"]}
    assert listed[original.name]["hashes"]["sha256"] == sha256(original)


# pip.


@pytest.mark.parametrize(
    "index_path",
    [
        pytest.param("/simple", id="simple"),
        # The origin's promise: ``pip install -i http://localhost:8080 <pkg>``.
        pytest.param("", id="server-url-alone"),
    ],
)
def test_pip_install_from_the_simple_index(
    server: MinistryProcess, uploaded: None, env: dict[str, str], tmp_path: Path, index_path: str
) -> None:
    target = tmp_path / "target"
    mark = server.log_size()
    result = run(
        [
            *PIP,
            "install",
            "--index-url",
            f"{server.url}{index_path}",
            "--no-cache-dir",
            "--target",
            str(target),
            f"{PROJECT}==1.0",
        ],
        env,
    )
    assert result.returncode == 0, result.output
    assert "Successfully installed ministry-sample-1.0" in result.stdout
    module = (target / "ministry_sample" / "__init__.py").read_text()
    assert '__version__ = "1.0"' in module
    assert (target / "ministry_sample-1.0.dist-info" / "METADATA").is_file()
    log = server.log_since(mark)
    assert any('" 200 ' in line for line in access_lines(log, f'"GET {index_path}/{PROJECT}/')), log
    assert any(
        '" 200 ' in line and "pip/" in line
        for line in access_lines(log, f"/packages/{PROJECT}/ministry_sample-1.0-py3-none-any.whl")
    ), log


def test_pip_download_sdist(
    server: MinistryProcess, uploaded: None, sample_dists, env: dict[str, str], tmp_path: Path
) -> None:
    dest = tmp_path / "downloads"
    result = run(
        [
            *PIP,
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--no-build-isolation",
            "--no-cache-dir",
            "--index-url",
            f"{server.url}/simple/",
            f"{PROJECT}==1.0",
            "-d",
            str(dest),
        ],
        env,
    )
    assert result.returncode == 0, result.output
    sdist = sample_dists["1.0"]["sdist"]
    assert [path.name for path in dest.iterdir()] == [sdist.name]
    assert (dest / sdist.name).read_bytes() == sdist.read_bytes()


def test_pip_find_links_reads_the_directory_listing(
    server: MinistryProcess, uploaded: None, sample_dists, env: dict[str, str], tmp_path: Path
) -> None:
    dest = tmp_path / "downloads"
    result = run(
        [
            *PIP,
            "download",
            "--no-deps",
            "--no-index",
            "--no-cache-dir",
            "--find-links",
            f"{server.url}/packages/{PROJECT}/",
            PROJECT,
            "-d",
            str(dest),
        ],
        env,
    )
    assert result.returncode == 0, result.output
    wheel = sample_dists["1.1"]["wheel"]  # the newest version, as a wheel
    assert [path.name for path in dest.iterdir()] == [wheel.name]
    assert (dest / wheel.name).read_bytes() == wheel.read_bytes()


# uv.


def test_uv_pip_install_uses_json_and_core_metadata(
    server: MinistryProcess, uploaded: None, env: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "target"
    mark = server.log_size()
    result = run(
        [
            *UV,
            "pip",
            "install",
            "-v",
            "--index-url",
            f"{server.url}/simple/",
            "--no-cache",
            "--python",
            sys.executable,
            "--target",
            str(target),
            PROJECT,
        ],
        env,
    )
    assert result.returncode == 0, result.output
    assert '__version__ = "1.1"' in (target / "ministry_sample" / "__init__.py").read_text()
    assert (target / "ministry_sample-1.1.dist-info" / "METADATA").is_file()

    log = server.log_since(mark)
    # uv read the PEP 658 metadata file instead of opening the wheel to resolve.
    metadata_path = f"/packages/{PROJECT}/ministry_sample-1.1-py3-none-any.whl.metadata"
    fetched = [line for line in access_lines(log, metadata_path) if "uv/" in line]
    assert fetched and all('" 200 ' in line for line in fetched), log
    # uv's request for the project page was answered with the JSON page: the
    # body size in the access log is that of the JSON rendering, not the HTML.
    pages = [line for line in access_lines(log, f"/simple/{PROJECT}/ ") if "uv/" in line]
    assert pages, log
    sizes = {int(m.group(1)) for line in pages if (m := re.search(r'" 200 (\d+) ', line))}
    status, headers, json_page = fetch(f"{server.url}/simple/{PROJECT}/", UV_ACCEPT)
    assert status == 200 and headers["content-type"] == JSON_V1
    assert headers.get("vary", "").lower() == "accept"
    _, _, html_page = fetch(f"{server.url}/simple/{PROJECT}/", TEXT_HTML)
    assert len(json_page) != len(html_page)
    assert sizes == {len(json_page)}, (pages, len(json_page), len(html_page))
    # pip's Accept header gets JSON too.
    _, pip_headers, _ = fetch(f"{server.url}/simple/{PROJECT}/", PIP_ACCEPT)
    assert pip_headers["content-type"] == JSON_V1


def test_uv_publish_to_the_legacy_url(
    ministry_server: MinistryProcess, sample_dists, env: dict[str, str], tmp_path: Path
) -> None:
    # uv publish skips sdists whose names are not normalised (PEP 625), which
    # the installed setuptools still writes ("ministry-sample-1.0.tar.gz"):
    # the sdist comes from the archive factory instead.
    sdist = tmp_path / sdist_filename(PROJECT, "1.0")
    sdist.write_bytes(make_sdist(PROJECT, "1.0", requires_python=">=3.8"))
    files = [sample_dists["1.0"]["wheel"], sdist]
    result = run(
        [
            *UV,
            "publish",
            "--publish-url",
            f"{ministry_server.url}/legacy/",
            "-u",
            "x",
            "-p",
            "y",
            *map(str, files),
        ],
        env,
    )
    assert result.returncode == 0, result.output
    assert "skipping" not in result.output
    listed = {
        f["filename"]: f["hashes"]["sha256"] for f in simple_json(ministry_server, PROJECT)["files"]
    }
    assert listed == {path.name: sha256(path) for path in files}


# The directory listing, crawled the way ``wget -r -np`` does.


def crawl(start: str, max_pages: int = 200) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Follow a listing's links below ``start``, as ``wget -r -np`` would.

    Returns (pages fetched, file URLs found, links not followed with the
    page they were on). A link ending in "/" or carrying a query is a page;
    anything else below ``start`` is a file. Links above ``start`` (parent
    directories) and to other hosts are not followed, but recorded.
    """
    base = urlsplit(start)
    pages, files, skipped = [], [], []
    queue, seen = [start], {start}
    while queue and len(pages) < max_pages:
        page = queue.pop(0)
        status, headers, body = fetch(page)
        assert status == 200, (page, status)
        assert headers["content-type"].startswith("text/html"), page
        pages.append(page)
        for link in links_of(body):
            href = link.href
            if not href:
                continue
            url = urljoin(page, href).split("#", 1)[0]
            parts = urlsplit(url)
            if parts.netloc != base.netloc or not parts.path.startswith(base.path):
                skipped.append((page, url))
                continue
            if url in seen:
                continue
            seen.add(url)
            if parts.path.endswith("/") or parts.query:
                queue.append(url)
            else:
                files.append(url)
    assert not queue, f"more than {max_pages} pages below {start}"
    return pages, files, skipped


def test_recursive_crawl_of_the_listing_finds_every_file_once(
    server: MinistryProcess, uploaded: None
) -> None:
    start = f"{server.url}/packages/"
    pages, files, skipped = crawl(start)

    # Every file of every hosted project, each under exactly one URL.
    expected: dict[str, str] = {}
    status, _, body = fetch(f"{server.url}/simple/", JSON_V1)
    assert status == 200
    for project in json.loads(body)["projects"]:
        for entry in simple_json(server, project["name"])["files"]:
            expected[f"{project['name']}/{entry['filename']}"] = entry["hashes"]["sha256"]
    assert expected, "the sample project should be hosted"
    found = [unquote(urlsplit(url).path.removeprefix("/packages/")) for url in files]
    assert sorted(found) == sorted(expected)
    for url, key in zip(files, found, strict=True):
        status, _, data = fetch(url)
        assert status == 200 and hashlib.sha256(data).hexdigest() == expected[key], url

    # Every project directory was reached, and nothing was left below /packages/.
    assert f"{start}{PROJECT}/" in pages
    assert all(urlsplit(page).path.startswith("/packages/") for page in pages)
    # The only links not followed lead up (Parent Directory) or to the site's
    # sections (its navigation, atop every listing), never to another host.
    sections = {"/", "/projects/", "/help/upload/", "/simple/"}
    for page, url in skipped:
        assert urlsplit(url).netloc == urlsplit(start).netloc, (page, url)
        up = urlsplit(page).path.startswith(urlsplit(url).path)
        assert up or urlsplit(url).path in sections, (page, url)


# The original distutils ``upload`` and ``register`` commands.


def distutils_body(fields: dict[str, object], newline: bytes = b"\r\n") -> bytes:
    """A body as distutils built it: a leading newline, lists as repeated parts."""
    separator = newline + b"--" + DISTUTILS_BOUNDARY.encode("ascii")
    body = bytearray()
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            title = newline + f'Content-Disposition: form-data; name="{key}"'.encode()
            if isinstance(item, tuple):
                title += f'; filename="{item[0]}"'.encode()
                data = item[1]
            else:
                data = str(item).encode("utf-8")
            body += separator + title + newline + newline + data
    body += separator + b"--" + newline
    return bytes(body)


def post(url: str, body: bytes, content_type: str) -> tuple[int, str, bytes]:
    auth = base64.b64encode(b"someone:secret").decode("ascii")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-type": content_type,
            "Content-length": str(len(body)),
            "Authorization": f"Basic {auth}",
        },
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.reason, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.reason, error.read()


def legacy_pkg_info(version: str) -> str:
    """PKG-INFO as distutils' sdist command wrote it (Metadata-Version 1.0)."""
    return (
        "Metadata-Version: 1.0\n"
        "Name: legacy-upload\n"
        f"Version: {version}\n"
        "Summary: An sdist uploaded the distutils way\n"
        "Home-page: UNKNOWN\n"
        "Author: UNKNOWN\n"
        "Author-email: UNKNOWN\n"
        "License: UNKNOWN\n"
        "Description: UNKNOWN\n"
        "Platform: UNKNOWN\n"
    )


def distutils_upload_fields(filename: str, content: bytes, version: str, generation: str) -> dict:
    """The fields of ``upload_file``, in its order, for one Python generation.

    Up to Python 3.7 distutils sent an md5 digest only. Python 3.8 to 3.11
    append md5, sha256 and "blake2_256" digests after ``comment``; the
    latter is in fact a 512-bit blake2b (``hashlib.blake2b()`` with its
    default size), so an index sees a 128-digit value under that name.
    Empty list fields (keywords, classifiers, ...) produce no part at all.
    """
    digests = {"md5_digest": hashlib.md5(content).hexdigest()}
    fields: dict[str, object] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": "legacy-upload",
        "version": version,
        "content": (filename, content),
        "filetype": "sdist",
        "pyversion": "",
        **(digests if generation == "py27-py37" else {}),
        "metadata_version": "1.0",
        "summary": "An sdist uploaded the distutils way",
        "home_page": "UNKNOWN",
        "author": "UNKNOWN",
        "author_email": "UNKNOWN",
        "license": "UNKNOWN",
        "description": "UNKNOWN",
        "keywords": [],
        "platform": ["UNKNOWN"],
        "classifiers": [],
        "download_url": "UNKNOWN",
        "provides": [],
        "requires": [],
        "obsoletes": [],
        "comment": "",
    }
    if generation == "py38-py311":
        fields.update(digests)
        fields["sha256_digest"] = hashlib.sha256(content).hexdigest()
        fields["blake2_256_digest"] = hashlib.blake2b(content).hexdigest()
    return fields


@pytest.mark.parametrize(
    ("generation", "version"),
    [
        ("py27-py37", "0.3"),
        pytest.param(
            "py38-py311",
            "0.4",
        ),
    ],
)
def test_distutils_upload_to_dist_then_pip_install(
    server: MinistryProcess, env: dict[str, str], tmp_path: Path, generation: str, version: str
) -> None:
    filename = f"legacy-upload-{version}.tar.gz"
    content = make_sdist(
        "legacy-upload",
        version,
        metadata=legacy_pkg_info(version),
        top_dir=f"legacy-upload-{version}",
    )
    status, reason, body = post(
        f"{server.url}/dist",
        distutils_body(distutils_upload_fields(filename, content, version, generation)),
        f"multipart/form-data; boundary={DISTUTILS_BOUNDARY}",
    )
    assert status == 200, (status, reason, body)

    listed = {f["filename"]: f for f in simple_json(server, "legacy-upload")["files"]}
    assert listed[filename]["hashes"]["sha256"] == hashlib.sha256(content).hexdigest()
    target = tmp_path / "target"
    result = run(
        [
            *PIP,
            "install",
            "--no-build-isolation",
            "--no-cache-dir",
            "--index-url",
            f"{server.url}/simple/",
            "--target",
            str(target),
            f"legacy-upload=={version}",
        ],
        env,
    )
    assert result.returncode == 0, result.output
    module = (target / "legacy_upload" / "__init__.py").read_text()
    assert f'__version__ = "{version}"' in module


def register_fields(name: str) -> dict[str, object]:
    """What distutils' ``register`` command posted (``build_post_data``)."""
    return {
        ":action": "submit",
        "metadata_version": "1.0",
        "name": name,
        "version": "2.0",
        "summary": "Registered, never uploaded",
        "home_page": "UNKNOWN",
        "author": "UNKNOWN",
        "author_email": "UNKNOWN",
        "license": "UNKNOWN",
        "description": "UNKNOWN",
        "keywords": [],
        "platform": ["UNKNOWN"],
        "classifiers": ["Programming Language :: Python :: 3"],
        "download_url": "UNKNOWN",
        "provides": [],
        "requires": [],
        "obsoletes": [],
    }


def hosted_projects(server: MinistryProcess) -> set[str]:
    status, _, body = fetch(f"{server.url}/simple/", JSON_V1)
    assert status == 200
    return {project["name"] for project in json.loads(body)["projects"]}


def test_distutils_register_adds_the_project(server: MinistryProcess) -> None:
    assert "registered-only" not in hosted_projects(server)
    status, reason, body = post(
        f"{server.url}/dist",
        distutils_body(register_fields("registered-only")),
        f"multipart/form-data; boundary={DISTUTILS_BOUNDARY}",
    )
    assert status == 200, (status, reason, body)
    assert "registered-only" in hosted_projects(server)
    # Its JSON API shows what was registered, with no files, as its project page does.
    for path in ("/pypi/registered-only/json", "/pypi/registered-only/2.0/json"):
        code, _, body = fetch(server.url + path)
        assert code == 200, (path, body)
        document = json.loads(body)
        assert document["info"]["version"] == "2.0"
        assert document["info"]["summary"] == "Registered, never uploaded"
        assert document["info"]["classifiers"] == ["Programming Language :: Python :: 3"]
        assert document["urls"] == []
    assert json.loads(fetch(server.url + "/pypi/registered-only/json")[2])["releases"] == {
        "2.0": []
    }
    assert fetch(server.url + "/pypi/registered-only/3.0/json")[0] == 404


def test_distutils_register_with_bare_newlines(server: MinistryProcess) -> None:
    """``register`` wrote its body with "\\n", not "\\r\\n", and a charset parameter."""
    status, reason, body = post(
        f"{server.url}/dist",
        distutils_body(register_fields("registered-lf"), newline=b"\n"),
        f"multipart/form-data; boundary={DISTUTILS_BOUNDARY}; charset=utf-8",
    )
    assert status == 200, (status, reason, body)
    assert "registered-lf" in hosted_projects(server)


# Restart: everything is still there.


def test_restart_keeps_everything(
    server: MinistryProcess, uploaded: None, env: dict[str, str], tmp_path: Path
) -> None:
    def snapshot() -> dict[str, object]:
        return {
            "projects": hosted_projects(server),
            "files": simple_json(server, PROJECT)["files"],
            "api": json.loads(fetch(f"{server.url}/pypi/{PROJECT}/json")[2])["releases"],
            "listing": fetch(f"{server.url}/packages/{PROJECT}/")[2],
        }

    before = snapshot()
    server.restart()
    assert snapshot() == before
    target = tmp_path / "target"
    result = run(
        [
            *PIP,
            "install",
            "--index-url",
            f"{server.url}/simple/",
            "--no-cache-dir",
            "--target",
            str(target),
            f"{PROJECT}==1.1",
        ],
        env,
    )
    assert result.returncode == 0, result.output
    assert '__version__ = "1.1"' in (target / "ministry_sample" / "__init__.py").read_text()

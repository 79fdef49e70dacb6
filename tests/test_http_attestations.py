"""PEP 740 attestations over HTTP, in memory: stored with the upload, served, linked, refused.

The attestations are built in the test (``attestation_factory``) with
placeholder signatures: the index checks their shape and subject only, so
nothing here needs Sigstore or the network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from urllib.parse import urljoin

import pytest_twisted
from accept_headers import UV
from archive_factory import make_wheel, wheel_filename
from attestation_factory import attestation, field
from http_harness import InMemoryIndex
from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.task import Clock

from ministry.core.attestations import INTEGRITY_V1, UNVERIFIED_PUBLISHER
from ministry.integrity import GRACE_PERIOD, BlobCollector, check

WHEEL = make_wheel("tidy", "1.0")
WHEEL_NAME = wheel_filename("tidy", "1.0")
PROVENANCE_URL = f"/integrity/tidy/1.0/{WHEEL_NAME}/provenance"


async def json_page(index: InMemoryIndex) -> dict:
    response = await index.request("GET", "/simple/tidy/", {"Accept": UV})
    return json.loads(response.body) if response.code == 200 else {"files": []}


def blob_names(index: InMemoryIndex) -> list[str]:
    return [name for _, _, names in os.walk(index.blobs.root) for name in names]


@pytest_twisted.ensureDeferred
async def test_attestations_are_kept_served_and_linked_from_the_json_page(index):
    sent = attestation(WHEEL_NAME, WHEEL)
    response = await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL, attestations=field(sent))
    assert response.code == 200, response.body

    served = await index.request("GET", PROVENANCE_URL)
    assert served.code == 200
    assert served.header("content-type") == INTEGRITY_V1
    assert json.loads(served.body) == {
        "version": 1,
        "attestation_bundles": [{"publisher": UNVERIFIED_PUBLISHER, "attestations": [sent]}],
    }
    (entry,) = (await json_page(index))["files"]
    page_url = "http://index.test/simple/tidy/"
    assert urljoin(page_url, entry["provenance"]) == "http://index.test" + PROVENANCE_URL


@pytest_twisted.ensureDeferred
async def test_a_file_without_attestations_has_no_provenance(index):
    assert (await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL)).code == 200
    (entry,) = (await json_page(index))["files"]
    assert entry["provenance"] is None
    assert (await index.request("GET", PROVENANCE_URL)).code == 404
    assert (await index.request("GET", "/integrity/tidy/2.0/x.whl/provenance")).code == 404


@pytest_twisted.ensureDeferred
async def test_the_provenance_is_only_found_under_the_files_own_version(index):
    sent = field(attestation(WHEEL_NAME, WHEEL))
    await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL, attestations=sent)
    wrong = await index.request("GET", f"/integrity/tidy/2.0/{WHEEL_NAME}/provenance")
    assert wrong.code == 404


@pytest_twisted.ensureDeferred
async def test_an_attestation_for_other_bytes_is_a_400_and_nothing_is_stored(index):
    other = field(attestation(WHEEL_NAME, b"some other wheel"))
    response = await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL, attestations=other)
    assert response.code == 400
    assert f"not for the uploaded '{WHEEL_NAME}'" in response.body.decode()
    assert (await json_page(index))["files"] == []
    assert blob_names(index) == []


@pytest_twisted.ensureDeferred
async def test_a_malformed_attestations_field_is_a_400_and_nothing_is_stored(index):
    response = await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL, attestations="[{")
    assert response.code == 400
    assert "'attestations' field is not valid JSON" in response.body.decode()
    assert (await json_page(index))["files"] == []
    assert blob_names(index) == []


@pytest_twisted.ensureDeferred
async def test_a_provenance_is_claimed_with_its_file_by_the_collector_and_the_check(index):
    sent = field(attestation(WHEEL_NAME, WHEEL))
    await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL, attestations=sent)
    long_ago = time.time() - 10 * GRACE_PERIOD
    for directory, _, names in os.walk(index.blobs.root):
        for name in names:
            os.utime(os.path.join(directory, name), (long_ago, long_ago))

    clock = Clock()
    collector = BlobCollector(index.store, index.blobs, clock)
    collector.startService()
    try:
        clock.advance(collector.first_delay)
        await collector.running_pass()
    finally:
        await collector.stopService()
    assert (await index.request("GET", PROVENANCE_URL)).code == 200
    report = await check(index.store, index.blobs, rehash=False)
    assert report.unclaimed == []


def signed_again(signature: bytes) -> dict:
    """An attestation of the same file with another signature, as each signing run gives."""
    sent = attestation(WHEEL_NAME, WHEEL)
    sent["envelope"]["signature"] = base64.b64encode(signature).decode()
    return sent


async def served_provenance(index: InMemoryIndex) -> dict:
    """The provenance served, checked against the sha256 the file's record names."""
    served = await index.request("GET", PROVENANCE_URL)
    assert served.code == 200
    record = await index.store.get_file("tidy", WHEEL_NAME)
    assert hashlib.sha256(served.body).hexdigest() == record.provenance_sha256
    return json.loads(served.body)


@pytest_twisted.ensureDeferred
async def test_racing_uploads_of_one_file_with_other_attestations_keep_one_whole(index):
    """Both are accepted (the same bytes); the winner's provenance is served, the loser's gone."""
    first, second = signed_again(b"run 1"), signed_again(b"run 2")
    responses = await gatherResults(
        [
            ensureDeferred(index.upload("tidy", "1.0", WHEEL_NAME, WHEEL, attestations=field(sent)))
            for sent in (first, second)
        ]
    )
    assert [response.code for response in responses] == [200, 200]
    (bundle,) = (await served_provenance(index))["attestation_bundles"]
    assert bundle["attestations"] in ([first], [second])
    assert len([name for name in blob_names(index) if name.endswith(".provenance")]) == 1


@pytest_twisted.ensureDeferred
async def test_an_upload_again_with_other_attestations_keeps_the_first(index):
    first = signed_again(b"run 1")
    await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL, attestations=field(first))
    again = await index.upload(
        "tidy", "1.0", WHEEL_NAME, WHEEL, attestations=field(signed_again(b"run 2"))
    )
    assert again.code == 200  # a re-run publish job must not fail on the file it already sent
    (bundle,) = (await served_provenance(index))["attestation_bundles"]
    assert bundle["attestations"] == [first]


@pytest_twisted.ensureDeferred
async def test_the_provenance_round_trips_through_a_bucket(tmp_path, s3_server, s3_bucket):
    served = InMemoryIndex(str(tmp_path), storage=s3_server.storage_url(s3_bucket))
    await served.start()
    served.blobs.startService()  # its thread pool: the harness starts the metadata store only
    try:
        sent = attestation(WHEEL_NAME, WHEEL)
        response = await served.upload("tidy", "1.0", WHEEL_NAME, WHEEL, attestations=field(sent))
        assert response.code == 200, response.body
        provenance = await served.request("GET", PROVENANCE_URL)
        assert provenance.code == 200, provenance.body
        assert json.loads(provenance.body)["attestation_bundles"][0]["attestations"] == [sent]
    finally:
        await served.blobs.stopService()
        await served.stop()

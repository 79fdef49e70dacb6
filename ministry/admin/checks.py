"""``check [--rehash] [--repair]``: the records compared with the stored files.

The comparing is :mod:`ministry.integrity`'s; this module says, for each
problem, what an operator can do about it, and repairs what can be: bytes no
record names, once older than ``--grace`` (an upload may still be about to
claim younger ones). It exits 1 while anything is left wrong, for cron and
monitoring.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from twisted.internet.threads import deferToThread

from ministry.integrity import CheckReport, check, remove_unclaimed
from ministry.interfaces import IBlobStore, IMetadataStore


async def check_command(
    args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore, *_: Any
) -> None:
    """``check [--rehash] [--repair]``: exit 1 while anything is left wrong."""
    report = await check(store, blobs, args.rehash)
    for record in report.missing:
        print(
            f"missing: {record.project} {record.filename} (sha256 {record.sha256}) is listed "
            "but its bytes are gone, and they cannot be repaired from nothing: upload the "
            "same file again to restore them"
        )
    for record, what in report.damaged:
        hint = "upload the same file again to restore it"
        if what.startswith("sha256"):  # same size: a re-upload would not notice
            hint = f"remove {record.blob_key} from {blobs.location}, then {hint}"
        print(f"damaged: {record.project} {record.filename} on disk is {what}: {hint}")
    left = report.problems
    if args.repair:
        left -= await _repair_unclaimed(store, blobs, report, args.grace)
    else:
        for blob in report.unclaimed:
            print(f"unclaimed: {blob.key} ({blob.size} bytes) has no record: --repair removes it")
    print(
        f"Checked {report.files} files: {len(report.missing)} missing, {len(report.damaged)} "
        f"damaged, {len(report.unclaimed)} unclaimed; {left} left wrong."
    )
    if left:
        raise SystemExit(1)


async def _repair_unclaimed(
    store: IMetadataStore, blobs: IBlobStore, report: CheckReport, grace: float
) -> int:
    """Remove unclaimed bytes older than ``grace`` (and stale staging files); how many."""
    staged = await deferToThread(blobs.cleanup_staging, grace)
    removed = set(await remove_unclaimed(store, blobs, report.unclaimed, time.time() - grace))
    for blob in report.unclaimed:
        if blob.key in removed:
            print(f"removed: {blob.key} ({blob.size} bytes), which no record named")
        else:
            print(
                f"kept: {blob.key} has no record yet, but is younger than --grace "
                f"({grace:g} s): an upload may still claim it (--grace 0 when no daemon runs)"
            )
    if staged:
        print(f"removed: {staged} stale staging files")
    return len(removed)

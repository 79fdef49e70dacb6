"""``summaries fill``: the project list's summaries of projects stored before there were any.

Both stores keep each project's summary in its record (``ministry.core.summaries``),
set by every upload and registration since. A SQLite database older than
that is filled in by its migration; a Redis database has no migrations, so
its older projects list no summary until their next release. This fills
them in once, from what is stored: a project with no summary and no version
it came from is offered its registration's summary, then the summary of the
release the rule would have kept (one file's metadata read), through
``IMetadataStore.offer_summary``, so the store decides by the same rule as
for an upload, and running daemons are told as for one. Running it again
changes nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from ministry.config import Settings
from ministry.core.models import ProjectRecord
from ministry.core.summaries import kept_release, metadata_summary, registered_summary
from ministry.interfaces import IBlobStore, IMetadataStore


async def summaries_command(
    args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore, settings: Settings
) -> None:
    projects = [
        project
        for project in await store.list_projects()
        if not project.summary and project.summary_version is None
    ]
    filled = 0
    for project in projects:
        filled += await fill(store, project)
    print(f"{filled} of {len(projects)} projects without a summary now have one")


async def fill(store: IMetadataStore, project: ProjectRecord) -> bool:
    """Offer ``project`` its registration's summary, then its kept release's; whether one took."""
    took = False
    offered = registered_summary(project.info)
    if offered is not None:
        took = await store.offer_summary(project.name, *offered)
    files = await store.list_files(project.name)
    while files:  # the file whose summary would be kept; the next if it has no metadata
        index = kept_release(record.version for record in files)
        assert index is not None
        record = files.pop(index)
        metadata = await store.get_metadata(project.name, record.filename)
        if metadata is not None:
            summary = metadata_summary(metadata)
            took = await store.offer_summary(project.name, summary, record.version) or took
            break
    return took


def add_summaries_command(commands: Any) -> None:
    summaries = commands.add_parser("summaries", help="the project list's one-line summaries")
    actions = summaries.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "fill", help="fill in the summaries of projects stored before ministry kept them"
    )

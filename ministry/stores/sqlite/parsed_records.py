"""The file records of big projects, kept parsed by their stored text between listings.

Every change to a project drops its view from the page cache, and the next
page of it lists the project's files again. Parsing a record (JSON, then a
``FileRecord``) costs tens of microseconds: nothing for a project of ten
files, most of a second for one of ten thousand after every upload into it
(issue 17). A record's stored text is its identity, so a record whose text
is unchanged since the last listing is the same record: only new or
rewritten ones (an upload, a yank) are parsed again, and deleted ones are
forgotten with the listing that no longer has them. Nothing else is trusted,
so a change made by another process (``ministry-admin``) is seen as surely
as one made here.

Only projects of :data:`MIN_FILES` files or more are kept, the most recently
listed first, up to :data:`BUDGET` records in all (their texts are the
memory this costs: about a kilobyte each).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable

from ministry.core.models import FileRecord

#: Below this many files a listing is parsed whole: it is cheap, and not worth the memory.
MIN_FILES = 500
#: Records kept over every project, so the memory is bounded however many projects are big.
BUDGET = 20_000


class ParsedRecords:
    """Records by stored text, per project; used on the store's one thread only."""

    def __init__(self, min_files: int = MIN_FILES, budget: int = BUDGET) -> None:
        self.min_files = min_files
        self.budget = budget
        self._projects: OrderedDict[str, dict[str, FileRecord]] = OrderedDict()
        self._held = 0
        #: Records parsed from text so far (what the memo saves shows here).
        self.parsed = 0

    def records(self, project: str, texts: Iterable[str]) -> list[FileRecord]:
        """The records of ``texts`` (a project's whole listing, in order)."""
        before = self._projects.pop(project, {})
        self._held -= len(before)
        now: dict[str, FileRecord] = {}
        listed = []
        for text in texts:
            record = before.get(text)
            if record is None:
                record = FileRecord.from_dict(json.loads(text))
                self.parsed += 1
            now[text] = record
            listed.append(record)
        if len(now) >= self.min_files:
            self._projects[project] = now
            self._held += len(now)
            while self._held > self.budget:
                _, dropped = self._projects.popitem(last=False)
                self._held -= len(dropped)
        return listed

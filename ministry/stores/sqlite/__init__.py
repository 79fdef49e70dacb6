"""The embedded metadata store: one SQLite file, for a single process.

This is the default so that ``twistd ministry`` needs nothing else installed
or running. Several processes must use the Redis store instead: this one
notifies subscribers only of changes made through itself (and, by polling,
of ``ministry-admin``'s changes to the same file).

One job a module, imports pointing down this list:

- ``summaries``: projects' summaries (``ministry.core.summaries``' rule)
  taken inside a write's transaction, and filled in by a migration;
- ``schema``: the tables, the connection's settings (WAL), the migrations
  from one schema version to the next, and the write transaction;
- ``projects``: projects and their files in SQL: the global serial, reads,
  claims of a filename, registration, yanks and deletions (tombstones);
- ``accounts``: users, their API tokens and their roles on projects in SQL;
- ``teams``: teams (holders of roles as ``@team``) and their members in SQL;
- ``store``: :class:`~store.SQLiteStore`, the ``IMetadataStore`` that runs
  all of the above on its one worker thread and tells subscribers of changes.
"""

from ministry.stores.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]

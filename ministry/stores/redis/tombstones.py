"""The Redis store's tombstones read and written one by one, for backups.

Kept apart from ``store.py``, which is at its size limit; :class:`Tombstones`
is a base of :class:`~ministry.stores.redis.store.RedisStore`. A project's
tombstones are its ``tombstones:<project>`` hash (filename -> sha256), which
the upload and delete scripts read and write; here they are only listed
(``ministry-admin export``) and added (``import``). Neither changes what
any page shows, so nothing is announced.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred

from ministry.stores.redis.records import text_pairs


class _Store(Protocol):
    """What of the store this uses."""

    def _key(self, *parts: str) -> str: ...

    def _command(self, *args: Any) -> Deferred[Any]: ...


class Tombstones:
    """``tombstones`` and ``add_tombstone`` of ``IMetadataStore``."""

    def tombstones(self: _Store, name: str) -> Deferred[dict[str, str]]:
        d = self._command("HGETALL", self._key("tombstones", name))
        return d.addCallback(text_pairs)

    def add_tombstone(self: _Store, name: str, filename: str, sha256: str) -> Deferred[None]:
        d = self._command("HSET", self._key("tombstones", name), filename, sha256)
        return d.addCallback(lambda _: None)

"""The shared metadata store on Redis: ``--redis URL``, for several processes or hosts.

One job a module, imports pointing down this list:

- ``address``: the endpoint (unix, TCP or verified TLS) that a ``--redis``
  URL names, once parsed by :mod:`ministry.core.redis_url`;
- ``connection``: txredisapi's lazy connection, the pub/sub listener's
  protocol (with TCP keepalive), and the calls still in flight;
- ``records``: script and command replies decoded into the core's records;
- ``scripts``: the key layout and every Lua script, as data, with the one
  helper that runs them (EVAL, then EVALSHA);
- ``changes``: each change announced once to the subscribers, whether heard
  in a write's reply, on pub/sub or when catching up after a reconnection;
- ``lease``: :class:`~lease.RedisLease`, the :class:`~ministry.interfaces.ILease`
  that keeps a mirror run to one process of all those on one Redis;
- ``project_status``: ``set_project_status`` (PEP 792), a base of the store;
- ``releases``: ``add_file``, ``register`` and ``offer_summary``, the writes
  that keep a project's summary (``ministry.core.summaries``), a base of the store;
- ``store``: :class:`~store.RedisStore`, the ``IMetadataStore`` tying them together.
"""

from ministry.stores.redis.store import RedisStore

__all__ = ["RedisStore"]

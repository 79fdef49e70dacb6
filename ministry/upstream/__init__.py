"""The upstream side of the proxy: asking upstream indexes, and keeping what they gave.

- ``client``: :class:`UpstreamClient`, HTTP requests for pages and file bodies
  over an injected ``IAgent`` and ``IReactorTime`` clock, with credentials per origin.
- ``body``: reading one response body within its bounds (size, idle, deadline, rate).
- ``pages``: :class:`UpstreamPages`, the service the catalog and the mirror ask:
  project views, TTL, revalidation, stale-if-error, ``--upstream-min-age``.
- ``saved_pages``: the fetched pages kept on disk, one JSON file per project.
- ``cache``: :class:`FileCache`, the proxied files kept, what its shared index says is held.
- ``eviction``: LRU eviction of proxied files, one process at a time, never a mirrored one.
- ``downloads``: verified downloads into the cache, joined by every reader
  (the mirror waits for the end, a client's response follows the bytes).

The rule: no HTTP-server types here (no ``IRequest``, ``Resource``, Klein or
``ministry.web``), and nothing from ``ministry.catalog``: imports point down
(stores, config, core). The web layer (``ministry.web.proxied_files``, the
catalog behind it) and the scheduled mirror (``ministry.mirror``) both use
this package; ``ministry.backends.build_upstream`` builds it.
"""

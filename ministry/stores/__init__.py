"""Storage backends: where metadata and distribution bytes live.

``sqlite`` is the embedded metadata store a single process uses by default,
``blobs`` keeps distribution files on a filesystem that several processes may
share. Both implement the interfaces in :mod:`ministry.interfaces`, and every
metadata store passes ``tests/test_store_contract.py``.
"""

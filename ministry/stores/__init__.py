"""Storage backends: where metadata and distribution bytes live.

- ``sqlite/``: the embedded metadata store a single process uses by default;
- ``redis/``: the metadata store several processes or hosts share;
- ``timed``: a wrapper around either, timing every call for ``/metrics``;
- ``subscribers``: the loop both metadata stores tell their changes through;
- ``lease``: the in-process :class:`~ministry.interfaces.ILease` (the
  embedded store's); the Redis store has its own, across processes;
- ``blobs``: distribution files on a filesystem several processes may share;
- ``s3``: distribution files in an S3-compatible bucket, for hosts sharing no disk.

They implement the interfaces in :mod:`ministry.interfaces`: every
metadata store passes ``tests/test_store_contract.py``, every blob store
``tests/test_blob_contract.py``.
"""

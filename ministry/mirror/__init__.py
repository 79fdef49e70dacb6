"""The scheduled mirror: the ``[mirror]`` selection fetched ahead of time, on a timer.

A :class:`MirrorService` is a ``TimerService``: it runs at start-up
(``now=True``) and then every ``mirror.every``, on the injected clock. It
plans with the pure :mod:`ministry.core.mirror_plan` and fetches through the
proxy's upstream side (:class:`~ministry.upstream.pages.UpstreamPages`, never
the web layer): pages land in the same page cache and files in the same file
cache, so a mirrored file is served exactly like a proxied one that a client
happened to ask for first. That also gives the run its properties for free:

- every file is checked against the page's sha256 before it is kept
  (:meth:`Downloads.fetch` runs the proxy's own download);
- incremental: a PyPI-like upstream's ``/simple/`` index, read once, says
  which projects' serials moved; the kept pages of the others are used as
  they are, and every other page is revalidated with its ETag (an
  unchanged project costs one 304); the files of either are checked to be
  on disk, and are already;
- resumable: a file in the store was verified before it was committed, so
  a run killed halfway is resumed by the next one without downloading any
  of it again.

One run at a time: a trigger while a run is going (the timer, or
``ministry-admin mirror run`` in the same process) is skipped. A run also
holds the store's lease (:class:`~ministry.interfaces.ILease`: taken at the
start, renewed during the run, released at the end; a dead holder's lease
expires). The Redis store's lease holds across processes, so only one of
them mirrors at a time; the embedded store's holds within this one process,
the only one that store assumes. A run never lets an
exception escape the timer: it is logged and recorded in :class:`MirrorStatus`.

Names the proxy's name policy keeps from the upstream (reserved, denied,
or not allowed) are skipped, each with its reason in the status's
``skipped``: not an error, since the policy is what the team asked for.

Mirrored files are in the proxy's cache, so ``--cache-max-size`` applies to
them too: give a bound that holds the selection, or none.

Modules:

- ``service``: :class:`MirrorService` (the timer, one run, the lease) and
  :func:`run_in_foreground` for ``ministry-admin mirror run``;
- ``status``: :class:`MirrorStatus`, what a run did, and its progress bar;
- ``serials``: one run's reading of the upstream's index, which kept pages
  are current;
- ``work``: one run's work list, shared by its concurrent workers (several
  projects' pages and files in flight at once, under one bound on downloads);
- ``builds``: the needs a fetched sdist's ``[build-system] requires`` add,
  so that a release with no wheel for a target builds from the mirror alone.

The mirror sits beside the web layer: it uses ``ministry.upstream``, the
stores' lease and the core, never ``ministry.web``.
"""

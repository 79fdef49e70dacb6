"""The ``ministry-admin`` command: operations on the configured index, outside the daemon.

It reads the same settings as ``twistd ministry`` (``--config``,
``--data-dir``, ``--redis``, ...) so it works on whichever store the daemon
uses:

- ``export DIR`` and ``import DIR`` copy a whole index between stores
  (embedded to Redis as a team grows) and make backups;
- ``user add|remove|list|passwd``, ``token create|revoke|list`` and
  ``project owners|add-owner|add-maintainer|remove-role`` manage who may
  publish what (passwords come from a prompt, or ``--password-stdin``);
- ``project status NAME [active|archived|quarantined|deprecated] [--reason TEXT]``
  shows or sets a project's PEP 792 status (``ministry.core.project_status``);
- ``yank``, ``unyank`` and ``delete`` act on a release (``PROJECT VERSION``)
  or a file (``PROJECT --file FILENAME``), as the HTTP API does;
- ``check [--rehash] [--repair]`` compares the records with the stored
  files (``ministry.integrity``): it exits 1 while anything is wrong;
- ``mirror run`` makes one pass of the ``[mirror]`` table in the foreground;
- ``summaries fill`` fills in the project list's summaries of projects a
  Redis database held before ministry kept them (``summaries``).

A running daemon sees these changes: with Redis at once (pub/sub), with the
embedded store within about a second (it watches the serial), and for users
and tokens once its short-lived memory of successful logins expires.

Modules:

- ``cli``: the argument parser, :func:`main`, and the run of one command
  on the configured store;
- ``transfer``: ``export`` and ``import``, and the export directory's format;
- ``users``: ``user``, ``token`` and ``project`` (roles), and the password prompt;
- ``releases``: ``yank``, ``unyank`` and ``delete``, and ``project status``;
- ``checks``: ``check``, its report and ``--repair``;
- ``mirror``: ``mirror run``;
- ``cache``: ``cache drop``;
- ``summaries``: ``summaries fill``.

``__main__`` runs :func:`main`, for ``python -m ministry.admin``; the
``ministry-admin`` console script is ``ministry.admin:main``.
"""

from ministry.admin.cli import main

__all__ = ["main"]

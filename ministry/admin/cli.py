"""``ministry-admin``: operations on the configured index, outside the daemon.

The command line itself: the argument parser (its first line above is the
``--help`` description), the settings read as ``twistd ministry`` reads
them, and the run of one command against the configured store. Each
command's work is in its own module of :mod:`ministry.admin`; they all take
``(args, store, blobs, settings)``, the shape :data:`COMMANDS` holds.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from twisted.internet.defer import ensureDeferred, maybeDeferred
from twisted.internet.task import react

from ministry import __version__
from ministry.admin.audit import add_audit_command, audit_command
from ministry.admin.cache import add_cache_command, cache_command
from ministry.admin.checks import check_command
from ministry.admin.cooldown import add_cooldown_command, cooldown_command
from ministry.admin.mirror import mirror_command
from ministry.admin.releases import curate_command
from ministry.admin.summaries import add_summaries_command, summaries_command
from ministry.admin.teams import add_team_command, team_command
from ministry.admin.transfer import export_command, import_command
from ministry.admin.users import project_command, read_password, token_command, user_command
from ministry.backends import build_storage, make_store
from ministry.config import SETTINGS, ConfigError, Settings, load_settings, parse_duration
from ministry.core.errors import MinistryError
from ministry.core.models import SCOPES, STATUSES, UPLOAD_SCOPE
from ministry.integrity import GRACE_PERIOD
from ministry.interfaces import IBlobStore, IMetadataStore

#: What a command runs, given the parsed arguments and the opened store.
Command = Callable[[argparse.Namespace, IMetadataStore, IBlobStore, Settings], Awaitable[None]]

COMMANDS: dict[str, Command] = {
    "export": export_command,
    "import": import_command,
    "check": check_command,
    "mirror": mirror_command,
    "user": user_command,
    "token": token_command,
    "team": team_command,
    "project": project_command,
    "yank": curate_command,
    "unyank": curate_command,
    "delete": curate_command,
    "audit": audit_command,
    "cooldown": cooldown_command,
    "cache": cache_command,
    "summaries": summaries_command,
}


def _settings(args: argparse.Namespace) -> Settings:
    given = {
        setting.name: getattr(args, setting.attribute)
        for setting in SETTINGS
        if getattr(args, setting.attribute, None) is not None
    }
    return load_settings(given, args.config)


async def _run(args: argparse.Namespace) -> None:
    from twisted.internet import reactor  # running: react() started it

    settings = _settings(args)
    data_dir = os.path.abspath(settings.data_dir)
    store = make_store(settings, data_dir)
    storage = build_storage(settings, data_dir, reactor)
    services = (*storage.services, store)
    # SQLiteStore's start fires when the database is open; RedisStore's returns None.
    for service in services:
        await maybeDeferred(service.startService)
    try:
        await COMMANDS[args.command](args, store, storage.uploads, settings)
    except MinistryError as exc:
        raise SystemExit(f"ministry-admin: {exc.message}") from None
    finally:
        for service in reversed(services):
            await maybeDeferred(service.stopService)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ministry-admin", description=__doc__.splitlines()[0])
    top.add_argument("--version", action="version", version=f"ministry {__version__}")
    top.add_argument("--config", "-c", help="the TOML settings file the daemon uses")
    for setting in SETTINGS:
        if setting.name != "port" and setting.flag:
            top.add_argument(
                f"--{setting.name}", dest=setting.attribute, action="store_const", const=True
            )
        elif setting.name != "port":
            top.add_argument(f"--{setting.name}", dest=setting.attribute, help=setting.help)
    commands = top.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="copy the whole index into a directory")
    export.add_argument("directory")
    export.add_argument(
        "--metadata-only", action="store_true", help="leave the distribution files out"
    )
    load = commands.add_parser("import", help="load an exported directory into this index")
    load.add_argument("directory")
    _account_commands(commands)
    add_team_command(commands)
    _curation_commands(commands)
    _check_command(commands)
    add_audit_command(commands)
    add_cooldown_command(commands)
    add_cache_command(commands)
    add_summaries_command(commands)
    mirror = commands.add_parser("mirror", help="the [mirror] table of the config file")
    actions = mirror.add_subparsers(dest="action", required=True)
    actions.add_parser("run", help="one mirror pass now, in the foreground, with a progress bar")
    return top


def _account_commands(commands: Any) -> None:
    user = commands.add_parser("user", help="users who may log in").add_subparsers(
        dest="action", required=True
    )
    for action, what in (("add", "add a user"), ("passwd", "change a user's password")):
        command = user.add_parser(action, help=what)
        command.add_argument("name")
        command.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        if action == "add":
            command.add_argument("--admin", action="store_true", help="may do everything")
    remove = user.add_parser("remove", help="remove a user, their tokens and roles")
    remove.add_argument("name")
    remove.add_argument("--force", action="store_true", help="even if the only owner of projects")
    user.add_parser("list", help="users, with their roles")

    token = commands.add_parser("token", help="API tokens").add_subparsers(
        dest="action", required=True
    )
    create = token.add_parser("create", help="make a token; printed once, on standard output")
    create.add_argument("user")
    create.add_argument(
        "--project", action="append", default=[], help="limit it to a project (repeatable)"
    )
    create.add_argument(
        "--scope",
        choices=SCOPES,
        default=UPLOAD_SCOPE,
        help="upload (default): whatever the user may do; read: install only, e.g. for CI",
    )
    token.add_parser("revoke", help="revoke a token by its id").add_argument("id")
    token.add_parser("list", help="tokens (ids, never secrets)").add_argument("user", nargs="?")

    project = commands.add_parser("project", help="project owners and maintainers, and status")
    actions = project.add_subparsers(dest="action", required=True)
    actions.add_parser("owners", help="list a project's roles").add_argument("name")
    for action in ("add-owner", "add-maintainer", "remove-role"):
        command = actions.add_parser(action, help=f"{action.replace('-', ' ')} of a project")
        command.add_argument("name")
        command.add_argument("user", help="a user, or @TEAM for a team")
    _status_command(actions)


def _status_command(actions: Any) -> None:
    status = actions.add_parser(
        "status",
        help="show or set a project's status (PEP 792): archived takes no uploads, "
        "quarantined offers no files to installers, deprecated warns on its page",
    )
    status.add_argument("name")
    status.add_argument("status", nargs="?", choices=STATUSES, help="omit to show the status")
    status.add_argument("--reason", help="why, shown to installers and on the project page")


def _curation_commands(commands: Any) -> None:
    for command, what in (
        ("yank", "yank a release or a file: installers skip it unless pinned"),
        ("unyank", "undo a yank"),
        ("delete", "delete a release or a file for good; its filenames are never reused"),
    ):
        sub = commands.add_parser(command, help=what)
        sub.add_argument("project")
        sub.add_argument("version", nargs="?", help="the release (every file of it)")
        sub.add_argument("--file", help="one file, by its filename, instead of a release")
        if command == "yank":
            sub.add_argument("--reason", default="", help="shown to installers")


def _check_command(commands: Any) -> None:
    command = commands.add_parser(
        "check", help="compare the records with the stored files; exit 1 if anything is wrong"
    )
    command.add_argument(
        "--rehash", action="store_true", help="re-hash every file (slow), not only compare sizes"
    )
    command.add_argument(
        "--repair", action="store_true", help="remove stored files that no record names"
    )
    command.add_argument(
        "--grace",
        type=parse_duration,
        default=GRACE_PERIOD,
        help="only remove files older than this, e.g. 1h (default: 1d, as the daemon does)",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse, check the settings before the reactor starts, read a password, run."""
    args = parser().parse_args(argv)
    try:
        _settings(args)
    except ConfigError as exc:
        raise SystemExit(f"ministry-admin: {exc}") from None
    if args.command == "user" and args.action in ("add", "passwd"):
        args.password = read_password(args)
    react(lambda _reactor: ensureDeferred(_run(args)))

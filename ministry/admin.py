"""``ministry-admin``: operations on the configured index, outside the daemon.

It reads the same settings as ``twistd ministry`` (``--config``,
``--data-dir``, ``--redis``, ...) so it works on whichever store the daemon
uses:

- ``export DIR`` and ``import DIR`` copy a whole index between stores
  (embedded to Redis as a team grows) and make backups;
- ``user add|remove|list|passwd``, ``token create|revoke|list`` and
  ``project owners|add-owner|add-maintainer|remove-role`` manage who may
  publish what (passwords come from a prompt, or ``--password-stdin``);
- ``yank``, ``unyank`` and ``delete`` act on a release (``PROJECT VERSION``)
  or a file (``PROJECT --file FILENAME``), as the HTTP API does;
- ``check [--rehash] [--repair]`` compares the records with the stored
  files (``ministry.integrity``): it exits 1 while anything is wrong.

A running daemon sees these changes: with Redis at once (pub/sub), with the
embedded store within about a second (it watches the serial), and for users
and tokens once its short-lived memory of successful logins expires.

An export directory holds ``projects.jsonl`` (one ProjectRecord a line),
``files.jsonl`` (one FileRecord a line, with its core metadata in base64),
and ``files/`` with the distribution files under their blob keys (hard links
when on the same filesystem). Importing re-claims every file through the
store's normal ``add_file`` (so serials are the importing store's own) after
checking each file's sha256; files already present with the same bytes are
skipped, conflicts are reported and skipped.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import ensureDeferred, maybeDeferred
from twisted.internet.task import react
from twisted.internet.threads import deferToThread

from ministry.config import (
    SETTINGS,
    ConfigError,
    Settings,
    load_mirror,
    load_settings,
    parse_duration,
)
from ministry.core.auth import check_username, hash_password, new_token, parse_htpasswd
from ministry.core.errors import FileExists, FilenameReused, MinistryError, SdistExists
from ministry.core.models import (
    MAINTAINER,
    OWNER,
    FileRecord,
    ProjectRecord,
    TokenRecord,
    UserRecord,
    utcnow,
)
from ministry.core.names import check_project_name
from ministry.curation import Curator, Target
from ministry.integrity import GRACE_PERIOD, CheckReport, check, remove_unclaimed, sha256_of
from ministry.interfaces import IBlobStore, IMetadataStore
from ministry.mirror import run_in_foreground
from ministry.stores.blobs import FilesystemBlobStore
from ministry.tap import make_store


def _link_or_copy(source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.exists(target):
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


async def export_index(
    store: IMetadataStore, blobs: IBlobStore, directory: str, with_files: bool = True
) -> tuple[int, int]:
    """Write every project and file of ``store`` to ``directory``; (projects, files)."""
    os.makedirs(directory, exist_ok=True)
    projects: list[ProjectRecord] = await store.list_projects()
    files: list[tuple[FileRecord, bytes | None]] = []
    for project in projects:
        for record in await store.list_files(project.name):
            files.append((record, await store.get_metadata(project.name, record.filename)))
    with open(os.path.join(directory, "projects.jsonl"), "w", encoding="utf-8") as out:
        for project in projects:
            out.write(json.dumps(project.to_dict()) + "\n")
    with open(os.path.join(directory, "files.jsonl"), "w", encoding="utf-8") as out:
        for record, metadata in files:
            line: dict[str, Any] = {"record": record.to_dict()}
            if metadata is not None:
                line["metadata"] = base64.b64encode(metadata).decode()
            out.write(json.dumps(line) + "\n")
    if with_files:
        for record, _ in files:
            _link_or_copy(
                blobs.local_path(record.blob_key),
                os.path.join(directory, "files", record.blob_key),
            )
    return len(projects), len(files)


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


async def import_index(
    store: IMetadataStore, blobs: IBlobStore, directory: str
) -> tuple[int, int, list[str]]:
    """Load an export into ``store``; (files added, files already there, problems)."""
    projects = {
        data["name"]: ProjectRecord.from_dict(data)
        for data in _read_jsonl(os.path.join(directory, "projects.jsonl"))
    }
    added, present, problems = 0, 0, []
    for line in _read_jsonl(os.path.join(directory, "files.jsonl")):
        record = FileRecord.from_dict(line["record"])
        metadata = base64.b64decode(line["metadata"]) if "metadata" in line else None
        source = os.path.join(directory, "files", record.blob_key)
        target = blobs.local_path(record.blob_key)
        if not os.path.exists(target):
            if not os.path.exists(source) or sha256_of(source) != record.sha256:
                problems.append(f"{record.filename}: file missing or damaged in the export")
                continue
            staging = blobs.staging_path()
            shutil.copyfile(source, staging)
            await blobs.commit(staging, record.blob_key)
        project = projects.get(record.project)
        display_name = project.display_name if project else record.project
        try:
            if await store.add_file(record, display_name, metadata):
                added += 1
            else:
                present += 1
        except (FileExists, FilenameReused, SdistExists) as exc:
            problems.append(exc.message)
    for project in projects.values():
        if project.info:
            await store.register(project.name, project.display_name, project.info)
    return added, present, problems


def _settings(args: argparse.Namespace) -> Settings:
    given = {
        setting.name: getattr(args, setting.attribute)
        for setting in SETTINGS
        if getattr(args, setting.attribute, None) is not None
    }
    return load_settings(given, args.config)


async def _run(args: argparse.Namespace) -> None:
    settings = _settings(args)
    data_dir = os.path.abspath(settings.data_dir)
    store = make_store(settings, data_dir)
    blobs = FilesystemBlobStore(os.path.join(data_dir, "files"))
    # SQLiteStore's start fires when the database is open; RedisStore's returns None.
    await maybeDeferred(store.startService)
    try:
        if args.command == "export":
            count = await export_index(store, blobs, args.directory, not args.metadata_only)
            print(f"Exported {count[0]} projects and {count[1]} files to {args.directory}")
            return
        if args.command == "import":
            added, present, problems = await import_index(store, blobs, args.directory)
            print(f"Imported {added} files ({present} were already there)")
            for problem in problems:
                print(f"skipped: {problem}", file=sys.stderr)
            if problems:
                raise SystemExit(1)
            return
        await COMMANDS[args.command](args, store, blobs, settings)
    except MinistryError as exc:
        raise SystemExit(f"ministry-admin: {exc.message}") from None
    finally:
        await store.stopService()


# -- users, tokens and roles -------------------------------------------------------


async def _user(args: argparse.Namespace, store: IMetadataStore, *_: Any) -> None:
    if args.action == "list":
        for user in await store.list_users():
            roles = await store.user_roles(user.name)
            owned = ", ".join(f"{name} ({role})" for name, role in sorted(roles.items()))
            print(f"{user.name}{' (admin)' if user.admin else ''}\t{owned or '-'}")
        return
    name = check_username(args.name)
    if args.action == "remove":
        await _refuse_orphaning(store, name, args.force)
        _done(await store.remove_user(name), f"Removed {name}", f"no user {name}")
        return
    password_hash = await deferToThread(hash_password, args.password)
    if args.action == "add":
        user = UserRecord(name, password_hash, args.admin, utcnow())
        _done(await store.add_user(user), f"Added {name}", f"{name} exists already")
    else:
        changed = await store.set_password(name, password_hash)
        _done(changed, f"Changed the password of {name}", f"no user {name}")


async def _refuse_orphaning(store: IMetadataStore, name: str, force: bool) -> None:
    """Refuse to leave projects without owners: the next uploader would own them."""
    orphans = []
    for project, role in sorted((await store.user_roles(name)).items()):
        owners = [u for u, r in (await store.get_roles(project)).items() if r == OWNER]
        if role == OWNER and owners == [name]:
            orphans.append(project)
    if orphans and not force:
        raise SystemExit(
            f"ministry-admin: {name} is the only owner of {', '.join(orphans)}; add another "
            "owner first (project add-owner), or use --force to leave them without one, "
            "for their next uploader to claim."
        )


async def _token(args: argparse.Namespace, store: IMetadataStore, *_: Any) -> None:
    if args.action == "list":
        for token in await store.list_tokens(args.user):
            projects = ", ".join(token.projects) or "all projects"
            print(f"{token.id}\t{token.username}\t{projects}\t{token.created:%Y-%m-%d %H:%M}")
    elif args.action == "revoke":
        _done(await store.revoke_token(args.id), f"Revoked {args.id}", f"no token {args.id}")
    else:
        projects = tuple(dict.fromkeys(check_project_name(name) for name in args.project))
        made = new_token()
        token = TokenRecord(made.id, args.user, made.digest, projects, utcnow())
        if not await store.add_token(token):
            raise SystemExit(
                f"ministry-admin: no user {args.user} (tokens are for users added here)"
            )
        print(
            f"Token {made.id} for {args.user}, for {', '.join(projects) or 'all their projects'}."
            " It is shown only this once: use it as the password of the user __token__.",
            file=sys.stderr,
        )
        print(made.text)


async def _project(
    args: argparse.Namespace, store: IMetadataStore, _: IBlobStore, settings: Settings
) -> None:
    name = check_project_name(args.name)
    if args.action == "owners":
        roles = await store.get_roles(name)
        for username, role in sorted(roles.items(), key=lambda item: (item[1] != OWNER, item[0])):
            print(f"{role}\t{username}")
        if not roles:
            print(f"{name} has no owner yet: its next uploader becomes its owner.")
        return
    username = check_username(args.user)
    if args.action == "remove-role":
        await store.set_role(name, username, None)
        print(f"{username} has no role in {name} now")
        return
    if await store.get_user(username) is None and username not in _htpasswd_users(settings):
        raise SystemExit(f"ministry-admin: no user {username}")
    role = OWNER if args.action == "add-owner" else MAINTAINER
    await store.set_role(name, username, role)
    print(f"{username} is now {role} of {name}")


def _htpasswd_users(settings: Settings) -> set[str]:
    if not settings.htpasswd:
        return set()
    with open(settings.htpasswd, encoding="utf-8") as handle:
        return set(parse_htpasswd(handle.read()).entries)


def _done(succeeded: bool, message: str, failure: str) -> None:
    if not succeeded:
        raise SystemExit(f"ministry-admin: {failure}")
    print(message)


# -- yank, unyank, delete ---------------------------------------------------------


async def _curate(
    args: argparse.Namespace, store: IMetadataStore, blobs: IBlobStore, *_: Any
) -> None:
    target = Target.of(check_project_name(args.project), args.version, args.file)
    curator = Curator(store, blobs)
    if args.command == "yank":
        files = [record.filename for record in await curator.select(target)]
        await curator.yank(target, args.reason)
        print(f"Yanked {target}: {', '.join(files)}")
    elif args.command == "unyank":
        files = [record.filename for record in await curator.select(target)]
        await curator.unyank(target)
        print(f"Un-yanked {target}: {', '.join(files)}")
    else:
        print(f"Deleted {target}: {', '.join(await curator.delete(target))}")


# -- check ------------------------------------------------------------------------


async def _check(
    args: argparse.Namespace, store: IMetadataStore, blobs: FilesystemBlobStore, *_: Any
) -> None:
    """``check [--rehash] [--repair]``: exit 1 while anything is left wrong."""
    report = await check(store, blobs, args.rehash)
    for record in report.missing:
        print(
            f"missing: {record.project} {record.filename} (sha256 {record.sha256}) is listed "
            "but its bytes are gone, and they cannot be repaired from nothing: upload the "
            "same file again to restore them"
        )
    for record, what in report.damaged:
        hint = "upload the same file again to restore it"
        if what.startswith("sha256"):  # same size: a re-upload would not notice
            hint = f"remove {blobs.local_path(record.blob_key)}, then {hint}"
        print(f"damaged: {record.project} {record.filename} on disk is {what}: {hint}")
    left = report.problems
    if args.repair:
        left -= await _repair_unclaimed(store, blobs, report, args.grace)
    else:
        for blob in report.unclaimed:
            print(f"unclaimed: {blob.key} ({blob.size} bytes) has no record: --repair removes it")
    print(
        f"Checked {report.files} files: {len(report.missing)} missing, {len(report.damaged)} "
        f"damaged, {len(report.unclaimed)} unclaimed; {left} left wrong."
    )
    if left:
        raise SystemExit(1)


async def _repair_unclaimed(
    store: IMetadataStore, blobs: FilesystemBlobStore, report: CheckReport, grace: float
) -> int:
    """Remove unclaimed bytes older than ``grace`` (and stale staging files); how many."""
    staged = await deferToThread(blobs.cleanup_staging, grace)
    removed = set(await remove_unclaimed(store, blobs, report.unclaimed, time.time() - grace))
    for blob in report.unclaimed:
        if blob.key in removed:
            print(f"removed: {blob.key} ({blob.size} bytes), which no record named")
        else:
            print(
                f"kept: {blob.key} has no record yet, but is younger than --grace "
                f"({grace:g} s): an upload may still claim it (--grace 0 when no daemon runs)"
            )
    if staged:
        print(f"removed: {staged} stale staging files")
    return len(removed)


async def _mirror(
    args: argparse.Namespace, store: IMetadataStore, _: Any, settings: Settings
) -> None:
    """``mirror run``: one pass of the ``[mirror]`` table, in the foreground."""
    try:
        config = load_mirror(args.config)
    except ConfigError as exc:
        raise SystemExit(f"ministry-admin: {exc}") from None
    if config is None:
        raise SystemExit("ministry-admin: no [mirror] table in the config file (--config)")
    try:
        status = await run_in_foreground(settings, config, store, sys.stderr)
    except ValueError as exc:
        raise SystemExit(f"ministry-admin: {exc}") from None
    for project, error in status.errors:
        print(f"error: {project}: {error}", file=sys.stderr)
    if status.errors:
        raise SystemExit(1)


COMMANDS = {
    "check": _check,
    "mirror": _mirror,
    "user": _user,
    "token": _token,
    "project": _project,
    "yank": _curate,
    "unyank": _curate,
    "delete": _curate,
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ministry-admin", description=__doc__.splitlines()[0])
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
    _curation_commands(commands)
    _check_command(commands)
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
    token.add_parser("revoke", help="revoke a token by its id").add_argument("id")
    token.add_parser("list", help="tokens (ids, never secrets)").add_argument("user", nargs="?")

    project = commands.add_parser("project", help="project owners and maintainers")
    actions = project.add_subparsers(dest="action", required=True)
    actions.add_parser("owners", help="list a project's roles").add_argument("name")
    for action in ("add-owner", "add-maintainer", "remove-role"):
        command = actions.add_parser(action, help=f"{action.replace('-', ' ')} of a project")
        command.add_argument("name")
        command.add_argument("user")


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


def _read_password(args: argparse.Namespace) -> str:
    """The new password, before the reactor starts: a line of stdin, or a prompt twice."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            raise SystemExit("ministry-admin: the passwords differ")
    if not password:
        raise SystemExit("ministry-admin: the password must not be empty")
    return password


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        _settings(args)
    except ConfigError as exc:
        raise SystemExit(f"ministry-admin: {exc}") from None
    if args.command == "user" and args.action in ("add", "passwd"):
        args.password = _read_password(args)
    react(lambda _reactor: ensureDeferred(_run(args)))


if __name__ == "__main__":
    main()

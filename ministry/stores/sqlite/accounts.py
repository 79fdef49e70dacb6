"""Users, their tokens and their roles on projects, in SQL.

Each function takes the connection first and runs on the store's one worker
thread (``SQLiteStore._run``). Removing a user removes their tokens, roles
and team memberships in the same transaction, so no token outlives its user.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

from ministry.core.models import OWNER, TokenRecord, UserRecord
from ministry.stores.sqlite.schema import transaction


def _user_json(user: UserRecord) -> str:
    return json.dumps(user.to_dict(), sort_keys=True)


def add_user(conn: sqlite3.Connection, user: UserRecord) -> bool:
    with transaction(conn):
        cursor = conn.execute(
            "INSERT OR IGNORE INTO users (name, record) VALUES (?, ?)",
            (user.name, _user_json(user)),
        )
    return cursor.rowcount == 1


def get_user(conn: sqlite3.Connection, name: str) -> UserRecord | None:
    row = conn.execute("SELECT record FROM users WHERE name = ?", (name,)).fetchone()
    return UserRecord.from_dict(json.loads(row[0])) if row else None


def list_users(conn: sqlite3.Connection) -> list[UserRecord]:
    rows = conn.execute("SELECT record FROM users ORDER BY name")
    return [UserRecord.from_dict(json.loads(record)) for (record,) in rows]


def has_users(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None


def set_password(conn: sqlite3.Connection, name: str, password_hash: str) -> bool:
    with transaction(conn):
        user = get_user(conn, name)
        if user is None:
            return False
        changed = replace(user, password_hash=password_hash)
        conn.execute("UPDATE users SET record = ? WHERE name = ?", (_user_json(changed), name))
    return True


def remove_user(conn: sqlite3.Connection, name: str) -> bool:
    with transaction(conn):
        if conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
            return False
        conn.execute("DELETE FROM tokens WHERE username = ?", (name,))
        conn.execute("DELETE FROM roles WHERE username = ?", (name,))
        conn.execute("DELETE FROM team_members WHERE username = ?", (name,))
    return True


def add_token(conn: sqlite3.Connection, token: TokenRecord) -> bool:
    with transaction(conn):
        if get_user(conn, token.username) is None:
            return False
        conn.execute(
            "INSERT INTO tokens (id, username, record) VALUES (?, ?, ?)",
            (token.id, token.username, json.dumps(token.to_dict(), sort_keys=True)),
        )
    return True


def get_token(conn: sqlite3.Connection, token_id: str) -> TokenRecord | None:
    row = conn.execute("SELECT record FROM tokens WHERE id = ?", (token_id,)).fetchone()
    return TokenRecord.from_dict(json.loads(row[0])) if row else None


def list_tokens(conn: sqlite3.Connection, username: str | None) -> list[TokenRecord]:
    if username is None:
        rows = conn.execute("SELECT record FROM tokens")
    else:
        rows = conn.execute("SELECT record FROM tokens WHERE username = ?", (username,))
    tokens = [TokenRecord.from_dict(json.loads(record)) for (record,) in rows]
    return sorted(tokens, key=lambda token: (token.created, token.id))


def revoke_token(conn: sqlite3.Connection, token_id: str) -> bool:
    with transaction(conn):
        return conn.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount == 1


def get_roles(conn: sqlite3.Connection, name: str) -> dict[str, str]:
    rows = conn.execute("SELECT username, role FROM roles WHERE project = ?", (name,))
    return dict(rows)


def user_roles(conn: sqlite3.Connection, username: str) -> dict[str, str]:
    rows = conn.execute("SELECT project, role FROM roles WHERE username = ?", (username,))
    return dict(rows)


def set_role(conn: sqlite3.Connection, name: str, username: str, role: str | None) -> None:
    with transaction(conn):
        if role is None:
            conn.execute("DELETE FROM roles WHERE project = ? AND username = ?", (name, username))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO roles (project, username, role) VALUES (?, ?, ?)",
                (name, username, role),
            )


def claim_project(conn: sqlite3.Connection, name: str, username: str) -> dict[str, str]:
    with transaction(conn):
        if not get_roles(conn, name):
            conn.execute(
                "INSERT INTO roles (project, username, role) VALUES (?, ?, ?)",
                (name, username, OWNER),
            )
        return get_roles(conn, name)

"""Sim's ``environment`` (per user) and ``workspace_environment`` (per workspace) variables.

A row's ``variables`` holds every variable of its owner, most of them Sim's, not ours. Sim
updates it by reading the object, merging keys and writing the whole object back, and so may
another operator replica. So a write here is a read-merge-write inside one transaction that
holds the row lock (``SELECT ... FOR UPDATE``; a missing row is first inserted empty with
``ON CONFLICT DO NOTHING`` so that there is a row to lock). Any other writer that takes the row
lock, or writes in a single statement, is serialised with it, and no key of either is lost.

Sim's own read-merge-write reads without ``FOR UPDATE`` today. Our writes still never drop one
of its keys (we always merge into the latest committed object), but its write can drop a key we
committed between its read and its write; the reconciler's drift check (``get_*``) writes it
again. Only the store's side can be made safe from here.

Two formats (``tenantdb.config.EnvVarFormat``):

* per-value (Sim today): ``{"KEY": "<iv>:<ct>:<tag>", ...}``. Only our key's value is encrypted
  or read; every other value is carried over exactly as stored, never decrypted (the object is
  re-serialised, so only insignificant JSON whitespace may change).
* whole-object (the seed's design): the column holds one JSON string, the encryption of the
  whole JSON object. Merging means decrypt, change one key, re-encrypt.

A row in the other format than the configured one is never overwritten: that would destroy
Sim's variables. It raises ``StoreIntegrityError`` instead.

``variables`` is ``json`` in Sim (``jsonb`` works as well: values are sent as ``json``, which
PostgreSQL assigns to either).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Final, Protocol

from psycopg import sql
from psycopg.types.json import Json

from tenantdb.config import EnvVarFormat
from tenantdb.store.errors import StoreIntegrityError, StoreUnavailableError
from tenantdb.store.pool import Connection

__all__ = ["USER", "WORKSPACE", "Cipher", "EnvTable", "get", "remove", "set_value"]


class Cipher(Protocol):
    """Encrypts and decrypts single values in Sim's ``<iv>:<ct>:<tag>`` format.

    ``decrypt`` raises ``ValueError`` (or a subclass) for a value it cannot decrypt.
    ``tenantdb.crypto.EncryptionKey`` is one.
    """

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, stored: str) -> str: ...


@dataclass(frozen=True, slots=True)
class EnvTable:
    table: str
    owner_column: str
    # Set to now() on insert. Sim's environment table has no created_at column;
    # workspace_environment has one.
    timestamp_columns: tuple[str, ...]


_LOCK_ATTEMPTS: Final = 3

USER: Final = EnvTable("environment", "user_id", ("updated_at",))
WORKSPACE: Final = EnvTable("workspace_environment", "workspace_id", ("created_at", "updated_at"))


def _names(table: EnvTable) -> dict[str, sql.Composable]:
    return {"table": sql.Identifier(table.table), "owner": sql.Identifier(table.owner_column)}


def _per_value_object(stored: object) -> dict[str, object]:
    if stored is None:
        return {}
    if isinstance(stored, dict):
        return dict(stored)
    raise StoreIntegrityError(
        "the row's variables are not a JSON object (whole-object format?); "
        "refusing to rewrite them in the per-value format"
    )


def _whole_object(stored: object, cipher: Cipher) -> dict[str, object]:
    if stored is None or stored == {}:
        # A row just inserted by us, or by Sim with the column's default.
        return {}
    if not isinstance(stored, str):
        raise StoreIntegrityError(
            "the row's variables are not one encrypted string (per-value format?); "
            "refusing to rewrite them in the whole-object format"
        )
    try:
        plaintext = cipher.decrypt(stored)
    except ValueError as exc:
        raise StoreIntegrityError("the row's variables cannot be decrypted with the configured key") from exc
    variables: object
    try:
        variables = json.loads(plaintext)
    except ValueError:
        variables = None
    # Checked outside the except block: a JSONDecodeError carries the whole decrypted text in
    # its ``doc``, and it must not ride along as the __context__ of the error raised here.
    if not isinstance(variables, dict):
        raise StoreIntegrityError("the row's decrypted variables are not a JSON object")
    return variables


def _encrypt_whole(variables: dict[str, object], cipher: Cipher) -> str:
    # Byte for byte what JavaScript's JSON.stringify makes: no spaces, non-ASCII kept as is.
    return cipher.encrypt(json.dumps(variables, separators=(",", ":"), ensure_ascii=False))


async def _lock_row(conn: Connection, table: EnvTable, owner_id: str) -> tuple[bool, object]:
    query = sql.SQL("SELECT variables FROM {table} WHERE {owner} = %s FOR UPDATE").format(**_names(table))
    cursor = await conn.execute(query, (owner_id,))
    row = await cursor.fetchone()
    return (False, None) if row is None else (True, row[0])


async def _write(conn: Connection, table: EnvTable, owner_id: str, stored: object) -> None:
    query = sql.SQL("UPDATE {table} SET variables = %s, updated_at = now() WHERE {owner} = %s").format(
        **_names(table)
    )
    await conn.execute(query, (Json(stored), owner_id))


async def set_value(
    conn: Connection,
    table: EnvTable,
    *,
    owner_id: str,
    key: str,
    value: str,
    cipher: Cipher,
    env_var_format: EnvVarFormat,
) -> None:
    """Set one variable, keeping every other; call inside a transaction."""
    stamps = [sql.Identifier(column) for column in table.timestamp_columns]
    insert = sql.SQL(
        # No conflict target: whichever unique index Sim's table has (user_id, workspace_id or
        # the id), an existing row means there is nothing to insert.
        "INSERT INTO {table} (id, {owner}, variables, {stamps}) VALUES (%s, %s, %s, {nows}) "
        "ON CONFLICT DO NOTHING"
    ).format(
        stamps=sql.SQL(", ").join(stamps),
        nows=sql.SQL(", ").join(sql.SQL("now()") for _ in stamps),
        **_names(table),
    )
    for _ in range(_LOCK_ATTEMPTS):
        await conn.execute(insert, (str(uuid.uuid4()), owner_id, Json({})))
        exists, stored = await _lock_row(conn, table, owner_id)
        if exists:
            break
        # The row that made the insert a no-op was deleted before we could lock it (Sim deleting
        # the user or workspace, say): insert again rather than update nothing.
    else:
        raise StoreUnavailableError("the environment row was deleted again and again while being written")
    new_stored: object
    if env_var_format is EnvVarFormat.PER_VALUE:
        variables = _per_value_object(stored)
        variables[key] = cipher.encrypt(value)
        new_stored = variables
    else:
        variables = _whole_object(stored, cipher)
        variables[key] = value
        new_stored = _encrypt_whole(variables, cipher)
    await _write(conn, table, owner_id, new_stored)


async def remove(
    conn: Connection,
    table: EnvTable,
    *,
    owner_id: str,
    key: str,
    cipher: Cipher,
    env_var_format: EnvVarFormat,
) -> bool:
    """Remove one variable if present (the row stays); call inside a transaction."""
    exists, stored = await _lock_row(conn, table, owner_id)
    if not exists:
        return False
    new_stored: object
    if env_var_format is EnvVarFormat.PER_VALUE:
        variables = _per_value_object(stored)
        if key not in variables:
            return False
        del variables[key]
        new_stored = variables
    else:
        variables = _whole_object(stored, cipher)
        if key not in variables:
            return False
        del variables[key]
        new_stored = _encrypt_whole(variables, cipher)
    await _write(conn, table, owner_id, new_stored)
    return True


async def get(
    conn: Connection,
    table: EnvTable,
    *,
    owner_id: str,
    key: str,
    cipher: Cipher,
    env_var_format: EnvVarFormat,
) -> str | None:
    """The decrypted value of one variable, or ``None`` when the row or the key is missing."""
    query = sql.SQL("SELECT variables FROM {table} WHERE {owner} = %s").format(**_names(table))
    cursor = await conn.execute(query, (owner_id,))
    row = await cursor.fetchone()
    if row is None:
        return None
    if env_var_format is EnvVarFormat.WHOLE_OBJECT:
        value = _whole_object(row[0], cipher).get(key)
        if value is not None and not isinstance(value, str):
            raise StoreIntegrityError("the variable's value is not a string")
        return value
    encrypted = _per_value_object(row[0]).get(key)
    if encrypted is None:
        return None
    if not isinstance(encrypted, str):
        raise StoreIntegrityError("the variable's stored value is not an encrypted string")
    try:
        return cipher.decrypt(encrypted)
    except ValueError as exc:
        raise StoreIntegrityError("the variable's value cannot be decrypted with the configured key") from exc

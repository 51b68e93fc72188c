"""Sim's ``environment`` (per user) and ``workspace_environment`` (per workspace) variables.

A row's ``variables`` holds every variable of its owner, most of them Sim's, not ours, as a JSON
object whose values are each encrypted on their own (``{"KEY": "<iv>:<ct>:<tag>", ...}``; the only
format Sim reads). A write here is a read-merge-write inside one transaction:

* workspace rows: Sim's own writers read, merge and write back under
  ``pg_advisory_xact_lock(hashtextextended(<workspace_id>, 0))`` without locking the row, so our
  transaction takes that same advisory lock first. A row lock alone does not exclude Sim: its
  stale read followed by its write back dropped our key (reproduced in tests/store).
* every row: ``SELECT ... FOR UPDATE`` (a missing row is first inserted empty with
  ``ON CONFLICT DO NOTHING`` so that there is a row to lock), which serialises our replicas and
  any writer that locks the row.

Sim's personal save (``POST /api/environment``) replaces the whole object without any lock; a
key it drops is written again by the next check (see the README for how fast).

Only our key's value is encrypted or read; every other value is carried over exactly as stored,
never decrypted. A row whose ``variables`` is not a JSON object (the retired whole-object format,
which Sim cannot read) is never overwritten: it raises ``StoreIntegrityError``.

``variables`` is ``json`` in Sim (``jsonb`` works as well: values are sent as ``json``, which
PostgreSQL assigns to either).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from psycopg import sql
from psycopg.types.json import Json

from tenantdb.api import Scope
from tenantdb.store.errors import StoreIntegrityError, StoreUnavailableError
from tenantdb.store.pool import Connection

__all__ = ["TABLES", "USER", "WORKSPACE", "Cipher", "EnvTable", "get", "get_sealed", "remove", "set_value"]


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
    # Whether Sim's writers of this table hold pg_advisory_xact_lock(hashtextextended(owner, 0)).
    sims_advisory_lock: bool
    # Whether Sim shows a key of this table to members only through its ``credential`` rows,
    # which a write of the key must then keep (``tenantdb.store.credentials``).
    sims_credentials: bool


_LOCK_ATTEMPTS: Final = 3

USER: Final = EnvTable(
    "environment", "user_id", ("updated_at",), sims_advisory_lock=False, sims_credentials=False
)
WORKSPACE: Final = EnvTable(
    "workspace_environment",
    "workspace_id",
    ("created_at", "updated_at"),
    sims_advisory_lock=True,
    sims_credentials=True,
)
# A user's database URL (a GlobalDatabase's) is in the user's environment, a workspace's in the
# workspace's.
TABLES: Final[Mapping[Scope, EnvTable]] = {Scope.GLOBAL: USER, Scope.WORKSPACE: WORKSPACE}


def _names(table: EnvTable) -> dict[str, sql.Composable]:
    return {"table": sql.Identifier(table.table), "owner": sql.Identifier(table.owner_column)}


def _variables(stored: object) -> dict[str, object]:
    if stored is None:
        return {}
    if isinstance(stored, dict):
        return dict(stored)
    raise StoreIntegrityError(
        "the row's variables are not a JSON object (the retired whole-object format, which Sim "
        "cannot read?); refusing to rewrite them"
    )


async def take_sims_lock(conn: Connection, table: EnvTable, owner_id: str) -> None:
    """Sim's own advisory lock on the owner's row, held to the end of the transaction."""
    if table.sims_advisory_lock:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (owner_id,))


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
    conn: Connection, table: EnvTable, *, owner_id: str, key: str, value: str, cipher: Cipher
) -> None:
    """Set one variable, keeping every other; call inside a transaction (first statement)."""
    await take_sims_lock(conn, table, owner_id)
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
    variables = _variables(stored)
    variables[key] = cipher.encrypt(value)
    await _write(conn, table, owner_id, variables)


async def remove(conn: Connection, table: EnvTable, *, owner_id: str, key: str) -> bool:
    """Remove one variable if present (the row stays); call inside a transaction (first statement)."""
    await take_sims_lock(conn, table, owner_id)
    exists, stored = await _lock_row(conn, table, owner_id)
    if not exists:
        return False
    variables = _variables(stored)
    if key not in variables:
        return False
    del variables[key]
    await _write(conn, table, owner_id, variables)
    return True


async def get_sealed(conn: Connection, table: EnvTable, *, owner_id: str, key: str) -> str | None:
    """The stored (encrypted) value of one variable, or ``None`` when the row or the key is missing."""
    query = sql.SQL("SELECT variables FROM {table} WHERE {owner} = %s").format(**_names(table))
    cursor = await conn.execute(query, (owner_id,))
    row = await cursor.fetchone()
    if row is None:
        return None
    encrypted = _variables(row[0]).get(key)
    if encrypted is None:
        return None
    if not isinstance(encrypted, str):
        raise StoreIntegrityError("the variable's stored value is not an encrypted string")
    return encrypted


async def get(conn: Connection, table: EnvTable, *, owner_id: str, key: str, cipher: Cipher) -> str | None:
    """The decrypted value of one variable, or ``None`` when the row or the key is missing."""
    encrypted = await get_sealed(conn, table, owner_id=owner_id, key=key)
    if encrypted is None:
        return None
    try:
        return cipher.decrypt(encrypted)
    except ValueError as exc:
        raise StoreIntegrityError("the variable's value cannot be decrypted with the configured key") from exc

"""The values the operator wrote into the metadata DB, as ``tenantdb rekey`` reads and rewrites them.

Only the operator's own: a tenant's row (``user_global_database`` / ``workspace_database``) whose
tenant claim is pinned to the very project the row holds, with ``ownership_type = 'platform'``;
and the env var key the operator writes (``GLOBAL_DB_URL`` / ``AGENT_DB_URL``) of a tenant
whose claim is pinned to a project. Nothing else is read; of an env var row, only that one key's
value is replaced, every other value carried over exactly as stored.

Every rewrite is a compare-and-set: the row's URI only while it is still the ciphertext that was
read (the operator may have written a new one meanwhile), the env var under Sim's lock with the
row locked (as every env var write: ``env_vars``). Pages are keyed by the owner id, so a run
stopped anywhere starts again from the beginning and finds the values done already sealed with
the current key: nothing to do for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from psycopg import sql
from psycopg.types.json import Json

from tenantdb.api import Scope
from tenantdb.store import databases, env_vars
from tenantdb.store.pool import Connection

__all__ = ["CLAIM_KINDS", "SealedRow", "env_owners_page", "reseal_env_var", "reseal_row", "rows_page"]

# The claim kind of each scope's database resource (as ``claims`` records it).
CLAIM_KINDS: Final[Mapping[Scope, str]] = {
    Scope.GLOBAL: "GlobalDatabase",
    Scope.WORKSPACE: "WorkspaceDatabase",
}


@dataclass(frozen=True, slots=True)
class SealedRow:
    owner_id: str
    sealed_uri: str = field(repr=False)


async def rows_page(conn: Connection, scope: Scope, *, after: str, limit: int) -> list[SealedRow]:
    """The operator's rows of ``scope`` whose owner id sorts after ``after``, in that order."""
    table = databases.TABLES[scope]
    query = sql.SQL(
        """
        SELECT t.{owner}, t.neon_connection_uri
        FROM {table} AS t
        JOIN tenantdb_tenant_claim AS c
          ON c.kind = %s AND c.tenant_id = t.{owner} AND c.neon_project_id = t.neon_project_id
        WHERE t.ownership_type = 'platform' AND t.{owner} > %s
        ORDER BY t.{owner}
        LIMIT %s
        """
    ).format(table=sql.Identifier(table.table), owner=sql.Identifier(table.owner_column))
    cursor = await conn.execute(query, (CLAIM_KINDS[scope], after, limit))
    return [SealedRow(owner_id=str(owner), sealed_uri=str(uri)) for owner, uri in await cursor.fetchall()]


async def reseal_row(conn: Connection, scope: Scope, *, owner_id: str, sealed: str, resealed: str) -> bool:
    """The row's URI replaced by ``resealed`` while it is still ``sealed``; whether it was.
    ``updated_at`` stays: the database did not change, only the key its URI is sealed with."""
    table = databases.TABLES[scope]
    query = sql.SQL(
        "UPDATE {table} SET neon_connection_uri = %s "
        "WHERE {owner} = %s AND neon_connection_uri = %s AND ownership_type = 'platform'"
    ).format(table=sql.Identifier(table.table), owner=sql.Identifier(table.owner_column))
    cursor = await conn.execute(query, (resealed, owner_id, sealed))
    return cursor.rowcount > 0


async def env_owners_page(conn: Connection, scope: Scope, *, after: str, limit: int) -> list[str]:
    """Owners (after ``after``, in order) of an env var row holding the operator's key, whose
    tenant claim is pinned to a project."""
    table = env_vars.TABLES[scope]
    query = sql.SQL(
        """
        SELECT e.{owner}
        FROM {table} AS e
        JOIN tenantdb_tenant_claim AS c
          ON c.kind = %s AND c.tenant_id = e.{owner} AND c.neon_project_id IS NOT NULL
        WHERE e.{owner} > %s AND json_typeof(e.variables::json) = 'object'
          AND (e.variables::json -> %s) IS NOT NULL
        ORDER BY e.{owner}
        LIMIT %s
        """
    ).format(table=sql.Identifier(table.table), owner=sql.Identifier(table.owner_column))
    cursor = await conn.execute(query, (CLAIM_KINDS[scope], after, scope.env_var, limit))
    return [str(owner) for (owner,) in await cursor.fetchall()]


async def reseal_env_var(
    conn: Connection, scope: Scope, *, owner_id: str, reseal: Callable[[str], str | None]
) -> bool:
    """The operator's key of the owner's env var row, resealed: ``reseal`` gets the stored value
    and returns the new one, or ``None`` to leave it. Call inside a transaction (first
    statement): Sim's lock, then the row's. Whether it was rewritten."""
    table = env_vars.TABLES[scope]
    await env_vars.take_sims_lock(conn, table, owner_id)
    query = sql.SQL("SELECT variables FROM {table} WHERE {owner} = %s FOR UPDATE").format(
        table=sql.Identifier(table.table), owner=sql.Identifier(table.owner_column)
    )
    cursor = await conn.execute(query, (owner_id,))
    row = await cursor.fetchone()
    if row is None or not isinstance(row[0], dict):
        return False
    variables = dict(row[0])
    stored = variables.get(scope.env_var)
    if not isinstance(stored, str):
        return False
    resealed = reseal(stored)
    if resealed is None:
        return False
    variables[scope.env_var] = resealed
    update = sql.SQL("UPDATE {table} SET variables = %s, updated_at = now() WHERE {owner} = %s").format(
        table=sql.Identifier(table.table), owner=sql.Identifier(table.owner_column)
    )
    await conn.execute(update, (Json(variables), owner_id))
    return True

"""``user_global_database`` and ``workspace_database``: one row per tenant database.

The two tables differ only in the owner column (``user_id`` / ``workspace_id``), so each
function takes a ``DatabaseTable`` and composes the SQL with ``psycopg.sql.Identifier``;
``TABLES`` says which table holds a tenant's row, by its scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from psycopg import sql

from tenantdb.api import Scope
from tenantdb.store.pool import Connection
from tenantdb.store.timestamps import from_db, to_db

__all__ = [
    "GLOBAL",
    "TABLES",
    "WORKSPACE",
    "DatabaseRow",
    "DatabaseTable",
    "delete",
    "get",
    "set_costs",
    "upsert",
]


@dataclass(frozen=True, slots=True)
class DatabaseTable:
    table: str
    owner_column: str


GLOBAL: Final = DatabaseTable("user_global_database", "user_id")
WORKSPACE: Final = DatabaseTable("workspace_database", "workspace_id")
# A user's database (a GlobalDatabase) is recorded in the user's row, a workspace's in its own.
TABLES: Final[Mapping[Scope, DatabaseTable]] = {Scope.GLOBAL: GLOBAL, Scope.WORKSPACE: WORKSPACE}


@dataclass(frozen=True, slots=True)
class DatabaseRow:
    """One tenant database as recorded for Sim. ``encrypted_uri`` is Sim-format ciphertext."""

    project_id: str
    branch_id: str
    database_name: str
    # Ciphertext, yet still kept out of reprs: logs have no use for it.
    encrypted_uri: str = field(repr=False)
    current_period_cost_cents: int
    last_consumption_sync: datetime | None
    # 'platform' (made by the platform: the operator's once it holds the project) or anything
    # else: a database the user brought, never written or removed by the operator.
    ownership_type: str = "platform"

    @property
    def user_owned(self) -> bool:
        return self.ownership_type != "platform"


def _names(table: DatabaseTable) -> dict[str, sql.Composable]:
    return {"table": sql.Identifier(table.table), "owner": sql.Identifier(table.owner_column)}


async def upsert(
    conn: Connection,
    table: DatabaseTable,
    *,
    owner_id: str,
    project_id: str,
    branch_id: str,
    encrypted_uri: str,
    database_name: str,
) -> None:
    # A row the user brought (ownership_type other than 'platform') is never overwritten, whoever
    # asks. The WHERE keeps a resync that changes nothing from writing a new row version and bumping
    # updated_at. The URI ciphertext differs on every encryption (fresh IV), so it counts as a
    # change only when the caller re-encrypted, which it does when the URI changed.
    query = sql.SQL(
        """
        INSERT INTO {table} AS t (id, {owner}, neon_project_id, neon_branch_id, neon_connection_uri,
                                  database_name, created_at, updated_at)
        VALUES (%s, %s, %s, %s, %s, %s, now(), now())
        ON CONFLICT ({owner}) DO UPDATE SET
            neon_project_id = EXCLUDED.neon_project_id,
            neon_branch_id = EXCLUDED.neon_branch_id,
            neon_connection_uri = EXCLUDED.neon_connection_uri,
            database_name = EXCLUDED.database_name,
            updated_at = now()
        WHERE t.ownership_type = 'platform'
          AND (t.neon_project_id, t.neon_branch_id, t.neon_connection_uri, t.database_name)
              IS DISTINCT FROM (EXCLUDED.neon_project_id, EXCLUDED.neon_branch_id,
                                EXCLUDED.neon_connection_uri, EXCLUDED.database_name)
        """
    ).format(**_names(table))
    await conn.execute(
        query, (str(uuid.uuid4()), owner_id, project_id, branch_id, encrypted_uri, database_name)
    )


async def delete(
    conn: Connection, table: DatabaseTable, *, owner_id: str, project_id: str | None = None
) -> bool:
    """Delete the tenant's row; with ``project_id``, only while the row holds that project.
    A row the user brought (ownership_type other than 'platform') is never deleted."""
    if project_id is None:
        query = sql.SQL("DELETE FROM {table} WHERE {owner} = %s AND ownership_type = 'platform'").format(
            **_names(table)
        )
        cursor = await conn.execute(query, (owner_id,))
    else:
        query = sql.SQL(
            "DELETE FROM {table} WHERE {owner} = %s AND neon_project_id = %s AND ownership_type = 'platform'"
        ).format(**_names(table))
        cursor = await conn.execute(query, (owner_id, project_id))
    return cursor.rowcount > 0


async def get(conn: Connection, table: DatabaseTable, *, owner_id: str) -> DatabaseRow | None:
    query = sql.SQL(
        """
        SELECT neon_project_id, neon_branch_id, database_name, neon_connection_uri,
               current_period_cost_cents, last_consumption_sync, ownership_type
        FROM {table} WHERE {owner} = %s
        """
    ).format(**_names(table))
    cursor = await conn.execute(query, (owner_id,))
    row = await cursor.fetchone()
    if row is None:
        return None
    project_id, branch_id, database_name, encrypted_uri, cost_cents, synced, ownership = row
    return DatabaseRow(
        project_id=project_id,
        branch_id=branch_id,
        database_name=database_name,
        encrypted_uri=encrypted_uri,
        current_period_cost_cents=cost_cents,
        last_consumption_sync=from_db(synced),
        ownership_type=ownership,
    )


async def set_costs(
    conn: Connection, table: DatabaseTable, costs: Mapping[str, int], *, synced_at: datetime
) -> int:
    """Set the period cost of every row whose project is in ``costs``, in one statement.

    ``updated_at`` is left alone: it tracks changes to the database itself, and
    ``last_consumption_sync`` already says when the cost was refreshed.
    """
    if not costs:
        return 0
    query = sql.SQL(
        """
        UPDATE {table} AS t
        SET current_period_cost_cents = c.cost_cents, last_consumption_sync = %s
        FROM unnest(%s::text[], %s::bigint[]) AS c(project_id, cost_cents)
        WHERE t.neon_project_id = c.project_id
        """
    ).format(table=sql.Identifier(table.table))
    cursor = await conn.execute(query, (to_db(synced_at), list(costs.keys()), list(costs.values())))
    return cursor.rowcount

"""What a platform already has, read for ``tenantdb adopt --dry-run``: read-only, in one snapshot.

Before the operator is switched on over a platform that provisioned databases itself (the seed's
in-app hooks), the dry run needs: Sim's users and workspaces, the recorded databases
(``user_global_database`` / ``workspace_database`` with ``ownership_type``), the env var each
tenant's database is published in (``GLOBAL_DB_URL`` / ``AGENT_DB_URL``), and what the operator
itself left on record (``tenantdb_orphaned_project``). All of it is read in one REPEATABLE READ,
READ ONLY transaction: the parts agree with each other, and nothing can be written.

Tables the operator makes (the two database tables, the orphan table) may not exist yet on a
platform that never ran it: they then read as empty (checked with ``to_regclass``, no DDL).
Sim's own ``user``, ``workspace`` and env var tables must exist (``StoreSchemaError``).

Connection strings stay encrypted here (``repr=False`` as well): whoever compares them decrypts
them in memory only. Of each env var row only our key is read, never the rest of the object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from psycopg import sql

from tenantdb.api import Scope, Tenant
from tenantdb.store import databases, env_vars
from tenantdb.store.errors import StoreSchemaError
from tenantdb.store.pool import Connection

__all__ = [
    "AdoptionInventory",
    "EnvValue",
    "RecordedDatabase",
    "SimWorkspaceRow",
    "held_projects",
    "read_inventory",
]

_SIMS_TABLES: Final = ("user", "workspace", "environment", "workspace_environment")
_ORPHANS: Final = "tenantdb_orphaned_project"
_CLAIMS: Final = "tenantdb_tenant_claim"


@dataclass(frozen=True, slots=True)
class RecordedDatabase:
    """One row of ``user_global_database`` or ``workspace_database``, as the platform left it."""

    tenant: Tenant
    ownership_type: str  # 'platform': made by the platform (ours to take over); else the user's own
    project_id: str  # may be empty: a row without a project
    branch_id: str
    database_name: str
    encrypted_uri: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class EnvValue:
    """A tenant's ``GLOBAL_DB_URL`` / ``AGENT_DB_URL`` as stored.

    ``encrypted`` is None when the row cannot hold it as Sim reads it: ``variables`` is not a
    JSON object, or the key's value is not a string.
    """

    encrypted: str | None = field(repr=False)

    @property
    def readable(self) -> bool:
        return self.encrypted is not None


@dataclass(frozen=True, slots=True)
class SimWorkspaceRow:
    id: str
    owner_id: str
    archived: bool


@dataclass(slots=True)
class AdoptionInventory:
    user_ids: set[str] = field(default_factory=set)
    workspaces: list[SimWorkspaceRow] = field(default_factory=list)
    databases: list[RecordedDatabase] = field(default_factory=list)
    # Only tenants whose env row holds the key, or whose row is not a JSON object.
    env_values: dict[Tenant, EnvValue] = field(default_factory=dict)
    # tenantdb_orphaned_project: project id -> disposition (retained | orphaned).
    left_behind: dict[str, str] = field(default_factory=dict)


async def _existing(conn: Connection, names: Iterable[str]) -> set[str]:
    cursor = await conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(quote_ident(name)) IS NOT NULL",
        (list(names),),
    )
    return {str(row[0]) for row in await cursor.fetchall()}


async def _databases(
    conn: Connection, scope: Scope, table: databases.DatabaseTable
) -> list[RecordedDatabase]:
    query = sql.SQL(
        "SELECT {owner}, ownership_type, neon_project_id, neon_branch_id, database_name, "
        "neon_connection_uri FROM {table} ORDER BY {owner}"
    ).format(owner=sql.Identifier(table.owner_column), table=sql.Identifier(table.table))
    cursor = await conn.execute(query)
    return [
        RecordedDatabase(
            tenant=Tenant(scope, str(owner)),
            ownership_type=str(ownership or ""),
            project_id=str(project or ""),
            branch_id=str(branch or ""),
            database_name=str(database or ""),
            encrypted_uri=str(uri or ""),
        )
        for owner, ownership, project, branch, database, uri in await cursor.fetchall()
    ]


async def _env_values(conn: Connection, scope: Scope, table: env_vars.EnvTable) -> dict[Tenant, EnvValue]:
    # The JSON operators answer NULL (no error) on a row that is not an object.
    query = sql.SQL(
        """
        SELECT {owner}, json_typeof(variables) = 'object' AND json_typeof(variables -> %(key)s) = 'string',
               variables ->> %(key)s
        FROM {table}
        WHERE json_typeof(variables) IS DISTINCT FROM 'object' OR variables -> %(key)s IS NOT NULL
        """
    ).format(owner=sql.Identifier(table.owner_column), table=sql.Identifier(table.table))
    cursor = await conn.execute(query, {"key": scope.env_var})
    return {
        Tenant(scope, str(owner)): EnvValue(str(value) if readable else None)
        for owner, readable, value in await cursor.fetchall()
    }


async def read_inventory(conn: Connection) -> AdoptionInventory:
    """Everything the dry run compares, read consistently; ``conn`` must not be in a transaction."""
    inventory = AdoptionInventory()
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        wanted = {*_SIMS_TABLES, *(t.table for t in databases.TABLES.values()), _ORPHANS}
        present = await _existing(conn, wanted)
        missing = [name for name in _SIMS_TABLES if name not in present]
        if missing:
            raise StoreSchemaError(
                f"the metadata DB has no {', '.join(missing)} table: point TENANTDB_METADATA_DATABASE_URL "
                "at Sim Studio's database (adoption reads Sim's own users, workspaces and env vars)"
            )
        cursor = await conn.execute('SELECT id FROM "user"')
        inventory.user_ids = {str(row[0]) for row in await cursor.fetchall()}
        cursor = await conn.execute("SELECT id, owner_id, archived_at IS NOT NULL FROM workspace ORDER BY id")
        inventory.workspaces = [
            SimWorkspaceRow(str(w), str(owner), bool(archived))
            for w, owner, archived in await cursor.fetchall()
        ]
        for scope, table in databases.TABLES.items():
            if table.table in present:
                inventory.databases.extend(await _databases(conn, scope, table))
            inventory.env_values.update(await _env_values(conn, scope, env_vars.TABLES[scope]))
        if _ORPHANS in present:
            cursor = await conn.execute("SELECT neon_project_id, disposition FROM tenantdb_orphaned_project")
            inventory.left_behind = {str(p): str(d) for p, d in await cursor.fetchall()}
    return inventory


async def held_projects(conn: Connection, project_ids: Iterable[str]) -> set[str]:
    """Those of ``project_ids`` that a metadata row or a tenant claim names: a database in use."""
    ids = sorted(set(project_ids))
    if not ids:
        return set()
    tables = [*(t.table for t in databases.TABLES.values()), _CLAIMS]
    present = await _existing(conn, tables)
    held: set[str] = set()
    for table in tables:
        if table not in present:
            continue
        query = sql.SQL("SELECT DISTINCT neon_project_id FROM {} WHERE neon_project_id = ANY(%s)").format(
            sql.Identifier(table)
        )
        cursor = await conn.execute(query, (ids,))
        held.update(str(row[0]) for row in await cursor.fetchall())
    return held

"""``MetadataStore``: the one object the rest of the operator uses to reach the metadata DB.

It owns the connection pool, the cipher for env vars and the env-var format, and turns every
psycopg error into the store's own (``tenantdb.store.translate``). The SQL lives in one module per
table family; this class only picks a connection, a transaction where several statements must
be atomic, and the table (for a tenant's row or env var, by the ``Tenant``'s scope).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from types import TracebackType
from typing import Self

from tenantdb.api import Scope, Tenant
from tenantdb.store import (
    adoption,
    budgets,
    claims,
    credentials,
    databases,
    decisions,
    env_vars,
    organizations,
    orphans,
    rekey,
    sim_tables,
)
from tenantdb.store.adoption import AdoptionInventory
from tenantdb.store.budgets import BudgetRow
from tenantdb.store.claims import Claimant
from tenantdb.store.databases import DatabaseRow
from tenantdb.store.decisions import DecisionRow
from tenantdb.store.env_vars import Cipher
from tenantdb.store.migrations import apply_migrations, check_env_tables
from tenantdb.store.orphans import OrphanRow
from tenantdb.store.pool import Connection, Pool, open_pool
from tenantdb.store.rekey import SealedRow
from tenantdb.store.sim_tables import Fingerprint, SimSnapshot
from tenantdb.store.translate import translate_errors

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "MetadataStore"]

DEFAULT_TIMEOUT_SECONDS = 10.0


class MetadataStore:
    """Sim's metadata DB as the operator sees it. Create with ``await MetadataStore.open(...)``.

    Single-statement operations run in autocommit (one round trip each, atomic anyway);
    read-merge-writes run in one transaction. Every operation may raise
    ``StoreUnavailableError`` (transient), ``StoreIntegrityError`` or ``StoreError``.
    """

    def __init__(self, pool: Pool, *, cipher: Cipher, standalone_env_tables: bool = False) -> None:
        self._pool = pool
        self._cipher = cipher
        self._standalone_env_tables = standalone_env_tables

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        cipher: Cipher,
        standalone_env_tables: bool = False,
        max_size: int = 10,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> MetadataStore:
        """Connect to the metadata DB at ``url`` (a secret: no error repeats it).

        ``timeout_seconds`` bounds the wait for the first connection here and, later, every
        wait for a free connection; past it an operation raises ``StoreUnavailableError``.
        ``standalone_env_tables``: ``migrate`` creates Sim's two env var tables (a metadata DB
        without Sim only; ``TENANTDB_STANDALONE_ENV_TABLES``).
        """
        pool = await open_pool(url, max_size=max_size, timeout_seconds=timeout_seconds)
        return cls(pool, cipher=cipher, standalone_env_tables=standalone_env_tables)

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        # Neither the URL nor the cipher: both are secrets.
        return f"MetadataStore(standalone_env_tables={self._standalone_env_tables!r})"

    @asynccontextmanager
    async def _connection(self, operation: str) -> AsyncIterator[Connection]:
        with translate_errors(operation):
            async with self._pool.connection() as conn:
                yield conn

    @asynccontextmanager
    async def _transaction(self, operation: str) -> AsyncIterator[Connection]:
        with translate_errors(operation):
            async with self._pool.connection() as conn, conn.transaction():
                yield conn

    # -- schema and health -------------------------------------------------------------------
    async def migrate(self) -> list[str]:
        """Apply pending migrations (serialised across replicas); return the names applied."""
        async with self._connection("migrate") as conn:
            return await apply_migrations(conn, standalone_env_tables=self._standalone_env_tables)

    async def check_env_tables(self) -> None:
        """Start-up check: ``StoreSchemaError`` (saying what to do) without Sim's env var tables."""
        async with self._connection("check_env_tables") as conn:
            await check_env_tables(conn)

    async def ping(self) -> None:
        """Readiness: a round trip to the DB through the pool."""
        async with self._connection("ping") as conn:
            await conn.execute("SELECT 1")

    # -- tenant databases -------------------------------------------------------------------------
    # A tenant's row is in the table of its scope (``databases.TABLES``), keyed by the tenant's id.
    async def upsert_database(
        self, tenant: Tenant, *, project_id: str, branch_id: str, encrypted_uri: str, database_name: str
    ) -> None:
        async with self._connection("upsert_database") as conn:
            await databases.upsert(
                conn,
                databases.TABLES[tenant.scope],
                owner_id=tenant.id,
                project_id=project_id,
                branch_id=branch_id,
                encrypted_uri=encrypted_uri,
                database_name=database_name,
            )

    async def delete_database(self, tenant: Tenant) -> bool:
        async with self._connection("delete_database") as conn:
            return await databases.delete(conn, databases.TABLES[tenant.scope], owner_id=tenant.id)

    async def delete_database_of_project(self, tenant: Tenant, *, project_id: str) -> bool:
        """Delete the tenant's row only while it holds ``project_id`` (never another resource's)."""
        async with self._connection("delete_database_of_project") as conn:
            return await databases.delete(
                conn, databases.TABLES[tenant.scope], owner_id=tenant.id, project_id=project_id
            )

    async def get_database(self, tenant: Tenant) -> DatabaseRow | None:
        async with self._connection("get_database") as conn:
            return await databases.get(conn, databases.TABLES[tenant.scope], owner_id=tenant.id)

    async def set_database_costs(self, costs: Mapping[str, int], *, synced_at: datetime) -> int:
        """Set ``current_period_cost_cents`` by Neon project id in both tables; return rows updated.

        One statement per table. They need no common transaction: each row's cost stands alone,
        and a sync interrupted between them is completed by the next one.
        """
        if not costs:
            return 0
        async with self._connection("set_database_costs") as conn:
            updated = 0
            for table in databases.TABLES.values():
                updated += await databases.set_costs(conn, table, costs, synced_at=synced_at)
            return updated

    # -- env vars ---------------------------------------------------------------------------------
    # A tenant's variables are in the table of its scope (``env_vars.TABLES``): ``environment``
    # for a user, ``workspace_environment`` (written under Sim's advisory lock, see
    # ``tenantdb.store.env_vars``) for a workspace.
    async def set_env_var(self, tenant: Tenant, *, key: str, value: str) -> None:
        """Set ``key`` to ``value`` (plaintext; stored encrypted) in the tenant's row, with the
        ``credential`` rows Sim's UI would make for a workspace's key.

        ``StoreTenantNotFoundError`` when Sim has no such user or workspace.
        """
        table = env_vars.TABLES[tenant.scope]
        async with self._transaction("set_env_var") as conn:
            await env_vars.set_value(
                conn, table, owner_id=tenant.id, key=key, value=value, cipher=self._cipher
            )
            if table.sims_credentials:
                await credentials.ensure_workspace_env_credential(conn, workspace_id=tenant.id, key=key)

    async def remove_env_var(self, tenant: Tenant, *, key: str) -> bool:
        """Remove only ``key`` (and a workspace key's credential rows); every other variable and
        the row stay. False if the key was absent."""
        table = env_vars.TABLES[tenant.scope]
        async with self._transaction("remove_env_var") as conn:
            removed = await env_vars.remove(conn, table, owner_id=tenant.id, key=key)
            if table.sims_credentials:
                await credentials.remove_workspace_env_credential(conn, workspace_id=tenant.id, key=key)
            return removed

    async def get_env_var(self, tenant: Tenant, *, key: str) -> str | None:
        """The decrypted value of ``key`` (for drift checks); None if absent."""
        async with self._connection("get_env_var") as conn:
            return await env_vars.get(
                conn, env_vars.TABLES[tenant.scope], owner_id=tenant.id, key=key, cipher=self._cipher
            )

    async def get_env_var_sealed(self, tenant: Tenant, *, key: str) -> str | None:
        """The stored value of ``key``, still encrypted (which key sealed it is the caller's
        question); None if absent."""
        async with self._connection("get_env_var_sealed") as conn:
            return await env_vars.get_sealed(conn, env_vars.TABLES[tenant.scope], owner_id=tenant.id, key=key)

    # -- budgets ------------------------------------------------------------------------------------
    async def upsert_budget(self, *, user_id: str, tier: str, custom_budget_cents: int | None) -> None:
        async with self._connection("upsert_budget") as conn:
            await budgets.upsert(conn, user_id=user_id, tier=tier, custom_budget_cents=custom_budget_cents)

    async def update_budget_usage(
        self,
        *,
        user_id: str,
        total_cost_cents: int,
        budget_exceeded: bool,
        period_start: datetime,
        synced_at: datetime,
    ) -> None:
        """Record the usage found by the consumption sync; ``StoreIntegrityError`` without a budget row."""
        async with self._connection("update_budget_usage") as conn:
            await budgets.update_usage(
                conn,
                user_id=user_id,
                total_cost_cents=total_cost_cents,
                budget_exceeded=budget_exceeded,
                period_start=period_start,
                synced_at=synced_at,
            )

    async def delete_budget(self, *, user_id: str) -> bool:
        async with self._connection("delete_budget") as conn:
            return await budgets.delete(conn, user_id=user_id)

    async def get_budget(self, *, user_id: str) -> BudgetRow | None:
        async with self._connection("get_budget") as conn:
            return await budgets.get(conn, user_id=user_id)

    # -- organisations (see tenantdb.store.organizations) ---------------------------------------------
    async def place_tenant(self, *, uid: str, kind: str, namespace: str, name: str, organization: str) -> str:
        """Record the resource's organisation unless one is recorded; returns the recorded one."""
        async with self._connection("recording a tenant's organisation") as conn:
            return await organizations.place(
                conn, uid=uid, kind=kind, namespace=namespace, name=name, organization=organization
            )

    async def tenant_organization(self, *, uid: str) -> str | None:
        async with self._connection("reading a tenant's organisation") as conn:
            return await organizations.get(conn, uid=uid)

    async def tenants_per_organization(self) -> dict[str, int]:
        async with self._connection("counting tenants per organisation") as conn:
            return await organizations.counts(conn)

    async def forget_tenant_organization(self, *, uid: str) -> bool:
        async with self._connection("forgetting a tenant's organisation") as conn:
            return await organizations.forget(conn, uid=uid)

    # -- claims ---------------------------------------------------------------------------------------
    async def claim_tenant(self, *, kind: str, tenant_id: str, claimant: Claimant) -> Claimant:
        """Claim a tenant for a resource; returns the holder (see ``tenantdb.store.claims``)."""
        async with self._connection("claim_tenant") as conn:
            return await claims.claim(conn, kind=kind, tenant_id=tenant_id, claimant=claimant)

    async def get_tenant_claim(self, *, kind: str, tenant_id: str) -> Claimant | None:
        async with self._connection("get_tenant_claim") as conn:
            return await claims.get(conn, kind=kind, tenant_id=tenant_id)

    async def list_tenant_holders(self, *, kind: str) -> dict[str, str]:
        """Tenant id -> the uid of the resource holding it, for every claim of ``kind``."""
        async with self._connection("list_tenant_holders") as conn:
            return await claims.holders(conn, kind=kind)

    async def record_claim_project(
        self, *, kind: str, tenant_id: str, holder_uid: str, project_id: str
    ) -> bool:
        async with self._connection("record_claim_project") as conn:
            return await claims.record_project(
                conn, kind=kind, tenant_id=tenant_id, holder_uid=holder_uid, project_id=project_id
            )

    async def project_holder(self, *, project_id: str) -> tuple[str, str, Claimant] | None:
        """``(kind, tenant id, holder)`` of the claim pinned to a Neon project, if any."""
        async with self._connection("project_holder") as conn:
            return await claims.holder_of_project(conn, project_id=project_id)

    async def release_tenant_claim(self, *, kind: str, tenant_id: str, holder_uid: str) -> bool:
        async with self._connection("release_tenant_claim") as conn:
            return await claims.release(conn, kind=kind, tenant_id=tenant_id, holder_uid=holder_uid)

    async def list_budgets(self) -> list[BudgetRow]:
        async with self._connection("list_budgets") as conn:
            return await budgets.list_all(conn)

    # -- orphans --------------------------------------------------------------------------------------
    async def record_orphan(
        self,
        *,
        kind: str,
        namespace: str,
        name: str,
        project_id: str,
        reason: str,
        disposition: str = orphans.ORPHANED,
        project_name: str | None = None,
    ) -> None:
        async with self._connection("record_orphan") as conn:
            await orphans.record(
                conn,
                kind=kind,
                namespace=namespace,
                name=name,
                project_id=project_id,
                reason=reason,
                disposition=disposition,
                project_name=project_name,
            )

    async def forget_orphan(self, *, project_id: str) -> bool:
        async with self._connection("forget_orphan") as conn:
            return await orphans.forget(conn, project_id=project_id)

    async def count_orphans(self) -> dict[str, int]:
        async with self._connection("count_orphans") as conn:
            return await orphans.count(conn)

    async def list_orphans(self) -> list[OrphanRow]:
        async with self._connection("list_orphans") as conn:
            return await orphans.list_all(conn)

    async def held_projects(self, project_ids: Iterable[str]) -> set[str]:
        """Those of ``project_ids`` a metadata row or a tenant claim names (a database in use)."""
        async with self._connection("held_projects") as conn:
            return await adoption.held_projects(conn, project_ids)

    # -- adoption, read-only (``tenantdb adopt --dry-run``) ------------------------------------------
    async def read_adoption_inventory(self) -> AdoptionInventory:
        """Sim's users and workspaces, the recorded databases, their env vars and what the
        operator left on record, in one READ ONLY snapshot (see ``tenantdb.store.adoption``)."""
        async with self._connection("read_adoption_inventory") as conn:
            return await adoption.read_inventory(conn)

    # -- the decision log -----------------------------------------------------------------------------
    async def record_decision(self, row: DecisionRow) -> None:
        """Add one decision to ``tenantdb_decision_log`` (see ``tenantdb.store.decisions``)."""
        async with self._connection("record_decision") as conn:
            await decisions.record(conn, row)

    async def list_decisions(
        self, tenants: Iterable[tuple[str, str]], *, limit: int = 20
    ) -> list[DecisionRow]:
        """The latest decisions about any of these ``(scope, tenant id)``, newest first."""
        async with self._connection("list_decisions") as conn:
            return await decisions.list_for(conn, tenants, limit=limit)

    async def prune_decisions(self, *, before: datetime) -> int:
        """Delete the decisions older than ``before``; how many went."""
        async with self._connection("prune_decisions") as conn:
            return await decisions.prune(conn, before=before)

    # -- Sim's own tables, read-only (the Sim sync) ---------------------------------------------------
    async def sim_fingerprint(self) -> Fingerprint:
        """Changes whenever a Sim row the sync follows changes; one cheap statement."""
        async with self._connection("sim_fingerprint") as conn:
            return await sim_tables.fingerprint(conn)

    async def sim_new_rows(
        self, *, users_after: datetime | None, workspaces_after: datetime | None
    ) -> tuple[Fingerprint, SimSnapshot, int, int]:
        """Users and workspaces Sim created after the given times (see ``sim_tables.new_rows``)."""
        async with self._connection("sim_new_rows") as conn:
            return await sim_tables.new_rows(conn, users_after=users_after, workspaces_after=workspaces_after)

    async def sim_snapshot(self) -> tuple[Fingerprint, SimSnapshot]:
        """Sim's users, live workspaces, live subscriptions and memberships, read consistently."""
        async with self._connection("sim_snapshot") as conn:
            return await sim_tables.snapshot(conn)

    async def restore_user_env_var(self, *, key: str, since: datetime | None) -> tuple[int, datetime | None]:
        """Put ``key`` back (from ``user_global_database``) where Sim's personal save dropped it.

        Looks only at ``environment`` rows changed after ``since`` (every row when None); returns
        how many were restored and the ``since`` for the next call. No Neon call: the connection
        string is the one the reconciler recorded. Each user in a transaction that holds a share
        lock on the user's ``user_global_database`` row: a delete of the database, which removes
        the row and then the key, either comes first (nothing restored) or waits and removes it.
        """
        async with self._connection("restore_user_env_var") as conn:
            users, watermark = await sim_tables.users_missing_key(conn, key=key, since=since)
        restored = 0
        for user_id in users:
            async with self._transaction("restore_user_env_var") as conn:
                cursor = await conn.execute(
                    "SELECT neon_connection_uri FROM user_global_database "
                    "WHERE user_id = %s AND ownership_type = %s FOR SHARE",
                    (user_id, sim_tables.PLATFORM_OWNERSHIP),
                )
                row = await cursor.fetchone()
                if row is None:
                    continue
                try:
                    uri = self._cipher.decrypt(row[0])
                except ValueError:
                    continue  # not ours to repair: the reconciler rewrites the row
                if await env_vars.get(conn, env_vars.USER, owner_id=user_id, key=key, cipher=self._cipher):
                    continue
                await env_vars.set_value(
                    conn, env_vars.USER, owner_id=user_id, key=key, value=uri, cipher=self._cipher
                )
                restored += 1
        return restored, watermark

    # -- a new encryption key (``tenantdb rekey``; see ``tenantdb.store.rekey``) --------------------
    async def sealed_rows_page(self, scope: Scope, *, after: str, limit: int) -> list[SealedRow]:
        """The operator's rows of ``scope`` after owner id ``after``, with their sealed URIs."""
        async with self._connection("sealed_rows_page") as conn:
            return await rekey.rows_page(conn, scope, after=after, limit=limit)

    async def reseal_row(self, scope: Scope, *, owner_id: str, sealed: str, resealed: str) -> bool:
        async with self._connection("reseal_row") as conn:
            return await rekey.reseal_row(conn, scope, owner_id=owner_id, sealed=sealed, resealed=resealed)

    async def env_owners_page(self, scope: Scope, *, after: str, limit: int) -> list[str]:
        """Owners after ``after`` whose env var row holds the operator's key."""
        async with self._connection("env_owners_page") as conn:
            return await rekey.env_owners_page(conn, scope, after=after, limit=limit)

    async def reseal_env_var(
        self, scope: Scope, *, owner_id: str, reseal: Callable[[str], str | None]
    ) -> bool:
        async with self._transaction("reseal_env_var") as conn:
            return await rekey.reseal_env_var(conn, scope, owner_id=owner_id, reseal=reseal)

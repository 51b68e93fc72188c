"""The store against a Sim-shaped database: Sim's lock, Sim's credential rows, Sim's schema, FKs."""

from __future__ import annotations

import asyncio

import pytest
from psycopg.types.json import Json

from tenantdb.api import Scope, Tenant
from tenantdb.crypto import EncryptionKey
from tenantdb.store import MetadataStore, StoreSchemaError, StoreTenantNotFoundError
from tenantdb.testing.sim_schema import SimRows

from .conftest import Database

URI = "postgresql://owner:secret@ep-cool-1.eu-central-1.aws.neon.tech/neondb?sslmode=require"


async def test_sims_locked_merge_cannot_drop_agent_db_url(
    sim_store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    """Sim's write: advisory lock, read, merge, write back. Ours, started after its read, must wait."""
    sim = SimRows(database.url)
    owner = await sim.register_user()
    workspace = await sim.create_workspace(owner)
    await sim.merge_workspace_env(workspace, {"OPENAI_API_KEY": key.encrypt("sk-1")})
    async with await database.connect() as conn:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (workspace,))
            cursor = await conn.execute(
                "SELECT variables FROM workspace_environment WHERE workspace_id = %s", (workspace,)
            )
            row = await cursor.fetchone()
            assert row is not None
            stale = dict(row[0])
            ours = asyncio.create_task(
                sim_store.set_env_var(Tenant(Scope.WORKSPACE, workspace), key="AGENT_DB_URL", value=URI)
            )
            await asyncio.sleep(0.5)  # ours runs now: without Sim's lock it commits before Sim writes
            stale["SLACK_TOKEN"] = key.encrypt("xoxb")
            await conn.execute(
                "UPDATE workspace_environment SET variables = %s, updated_at = now() WHERE workspace_id = %s",
                (Json(stale), workspace),
            )
        await ours
    variables = await sim.workspace_env(workspace)
    assert set(variables) == {"OPENAI_API_KEY", "SLACK_TOKEN", "AGENT_DB_URL"}
    assert key.decrypt(variables["AGENT_DB_URL"]) == URI


async def test_agent_db_url_gets_the_credential_rows_sims_ui_would_make(
    sim_store: MetadataStore, database: Database
) -> None:
    sim = SimRows(database.url)
    owner = await sim.register_user(name="Owner")
    member = await sim.register_user(name="Member")
    outsider = await sim.register_user(name="Outsider")
    workspace = await sim.create_workspace(owner)
    await sim.add_member(workspace, member, permission="read")
    await sim.create_workspace(outsider)

    await sim_store.set_env_var(Tenant(Scope.WORKSPACE, workspace), key="AGENT_DB_URL", value=URI)
    await sim_store.set_env_var(Tenant(Scope.WORKSPACE, workspace), key="AGENT_DB_URL", value=URI + "&x=1")
    expected = {"AGENT_DB_URL": {(owner, "admin"), (member, "member")}}
    assert await sim.workspace_env_credentials(workspace) == expected
    async with await database.connect() as conn:
        cursor = await conn.execute(
            "SELECT display_name, created_by, env_owner_user_id FROM credential WHERE workspace_id = %s",
            (workspace,),
        )
        assert await cursor.fetchall() == [("AGENT_DB_URL", owner, None)]

    assert await sim_store.remove_env_var(Tenant(Scope.WORKSPACE, workspace), key="AGENT_DB_URL") is True
    assert await sim.workspace_env_credentials(workspace) == {}
    async with await database.connect() as conn:
        cursor = await conn.execute("SELECT count(*) FROM credential_member")
        assert await cursor.fetchone() == (0,)


async def test_a_membership_sim_revoked_stays_revoked(sim_store: MetadataStore, database: Database) -> None:
    sim = SimRows(database.url)
    owner = await sim.register_user()
    member = await sim.register_user()
    workspace = await sim.create_workspace(owner)
    await sim.add_member(workspace, member)
    await sim_store.set_env_var(Tenant(Scope.WORKSPACE, workspace), key="AGENT_DB_URL", value=URI)
    async with await database.connect() as conn:
        await conn.execute("UPDATE credential_member SET status = 'revoked' WHERE user_id = %s", (member,))
    await sim_store.set_env_var(Tenant(Scope.WORKSPACE, workspace), key="AGENT_DB_URL", value=URI + "&y=2")
    assert await sim.workspace_env_credentials(workspace) == {"AGENT_DB_URL": {(owner, "admin")}}


async def test_a_user_or_workspace_sim_does_not_have_is_tenant_not_found(
    sim_store: MetadataStore,
) -> None:
    with pytest.raises(StoreTenantNotFoundError, match="Sim has no such user or workspace"):
        await sim_store.set_env_var(Tenant(Scope.GLOBAL, "ghost"), key="GLOBAL_DB_URL", value=URI)
    with pytest.raises(StoreTenantNotFoundError, match="Sim has no such user or workspace"):
        await sim_store.set_env_var(Tenant(Scope.WORKSPACE, "ghost"), key="AGENT_DB_URL", value=URI)


async def test_migrate_never_creates_sims_own_tables(database: Database, key: EncryptionKey) -> None:
    async with await MetadataStore.open(database.url, cipher=key) as store:
        await store.migrate()
        with pytest.raises(StoreSchemaError, match="TENANTDB_STANDALONE_ENV_TABLES=true"):
            await store.check_env_tables()
    async with await database.connect() as conn:
        cursor = await conn.execute(
            "SELECT to_regclass('environment') IS NULL AND to_regclass('workspace_environment') IS NULL"
        )
        assert await cursor.fetchone() == (True,)


async def test_sims_migration_still_runs_after_the_operator_started_first(
    database: Database, key: EncryptionKey
) -> None:
    async with await MetadataStore.open(database.url, cipher=key) as store:
        await store.migrate()
    # Sim's migrations create environment and workspace_environment themselves: no "already exists".
    async with await database.connect() as conn:
        from tenantdb.testing.sim_schema import create_sim_schema

        await create_sim_schema(conn)
    async with await MetadataStore.open(database.url, cipher=key) as store:
        await store.check_env_tables()


async def test_the_standalone_setting_creates_the_env_tables(database: Database, key: EncryptionKey) -> None:
    async with await MetadataStore.open(database.url, cipher=key, standalone_env_tables=True) as store:
        await store.migrate()
        await store.check_env_tables()
        await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
        assert await store.get_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") == URI

"""user_global_database / workspace_database rows: upserts, reads, deletes, costs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tenantdb.api import Scope, Tenant
from tenantdb.crypto import EncryptionKey
from tenantdb.store import DatabaseRow, MetadataStore
from tenantdb.store.claims import Claimant
from tenantdb.store.errors import StoreProjectClaimedError

from .conftest import Database


async def _updated_at(database: Database, table: str, column: str, owner: str) -> datetime:
    from psycopg import sql

    async with await database.connect() as conn:
        cursor = await conn.execute(
            sql.SQL("SELECT updated_at FROM {} WHERE {} = %s").format(
                sql.Identifier(table), sql.Identifier(column)
            ),
            (owner,),
        )
        row = await cursor.fetchone()
        assert row is not None
        value: datetime = row[0]
        return value


async def test_upsert_global_database_inserts_then_updates_one_row(
    store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    first_uri = key.encrypt("postgresql://a@host/neondb")
    await store.upsert_database(
        Tenant(Scope.GLOBAL, "u1"),
        project_id="p1",
        branch_id="br1",
        encrypted_uri=first_uri,
        database_name="neondb",
    )
    row = await store.get_database(Tenant(Scope.GLOBAL, "u1"))
    assert row == DatabaseRow(
        project_id="p1",
        branch_id="br1",
        database_name="neondb",
        encrypted_uri=first_uri,
        current_period_cost_cents=0,
        last_consumption_sync=None,
    )
    assert key.decrypt(row.encrypted_uri) == "postgresql://a@host/neondb"

    second_uri = key.encrypt("postgresql://b@host/app")
    await store.upsert_database(
        Tenant(Scope.GLOBAL, "u1"),
        project_id="p2",
        branch_id="br2",
        encrypted_uri=second_uri,
        database_name="app",
    )
    row = await store.get_database(Tenant(Scope.GLOBAL, "u1"))
    assert row is not None
    assert (row.project_id, row.branch_id, row.database_name, row.encrypted_uri) == (
        "p2",
        "br2",
        "app",
        second_uri,
    )

    async with await database.connect() as conn:
        cursor = await conn.execute(
            "SELECT count(*), min(ownership_type), min(length(id)) FROM user_global_database"
        )
        assert await cursor.fetchone() == (1, "platform", 36)  # one row, Sim's default, a UUID id


async def test_upsert_bumps_updated_at_only_when_something_changed(
    store: MetadataStore, database: Database
) -> None:
    args = {"project_id": "p1", "branch_id": "br1", "encrypted_uri": "iv:ct:tag", "database_name": "neondb"}
    await store.upsert_database(Tenant(Scope.WORKSPACE, "w1"), **args)
    async with await database.connect() as conn:  # backdate, so a bump would be visible
        await conn.execute("UPDATE workspace_database SET updated_at = updated_at - interval '1 hour'")
    backdated = await _updated_at(database, "workspace_database", "workspace_id", "w1")

    await store.upsert_database(Tenant(Scope.WORKSPACE, "w1"), **args)
    assert await _updated_at(database, "workspace_database", "workspace_id", "w1") == backdated

    await store.upsert_database(Tenant(Scope.WORKSPACE, "w1"), **{**args, "branch_id": "br2"})
    assert await _updated_at(database, "workspace_database", "workspace_id", "w1") > backdated


async def test_workspace_and_global_rows_are_separate(store: MetadataStore) -> None:
    args = {"project_id": "p1", "branch_id": "br1", "encrypted_uri": "iv:ct:tag", "database_name": "neondb"}
    await store.upsert_database(Tenant(Scope.WORKSPACE, "same-id"), **args)
    assert await store.get_database(Tenant(Scope.GLOBAL, "same-id")) is None
    row = await store.get_database(Tenant(Scope.WORKSPACE, "same-id"))
    assert row is not None
    assert row.project_id == "p1"


async def test_delete_reports_whether_a_row_was_there(store: MetadataStore) -> None:
    args = {"project_id": "p1", "branch_id": "br1", "encrypted_uri": "iv:ct:tag", "database_name": "neondb"}
    await store.upsert_database(Tenant(Scope.GLOBAL, "u1"), **args)
    await store.upsert_database(Tenant(Scope.WORKSPACE, "w1"), **{**args, "project_id": "p2"})
    assert await store.delete_database(Tenant(Scope.GLOBAL, "u1")) is True
    assert await store.delete_database(Tenant(Scope.GLOBAL, "u1")) is False
    assert await store.get_database(Tenant(Scope.GLOBAL, "u1")) is None
    assert await store.delete_database(Tenant(Scope.WORKSPACE, "w1")) is True
    assert await store.delete_database(Tenant(Scope.WORKSPACE, "w1")) is False
    assert await store.get_database(Tenant(Scope.WORKSPACE, "w1")) is None


async def test_set_database_costs_updates_both_tables_by_project_id(store: MetadataStore) -> None:
    args = {"branch_id": "br", "encrypted_uri": "iv:ct:tag", "database_name": "neondb"}
    await store.upsert_database(Tenant(Scope.GLOBAL, "u1"), project_id="p-user", **args)
    await store.upsert_database(Tenant(Scope.WORKSPACE, "w1"), project_id="p-ws", **args)
    await store.upsert_database(Tenant(Scope.WORKSPACE, "w2"), project_id="p-untouched", **args)
    # An aware time in another zone is stored as UTC and read back as the same instant.
    synced_at = datetime(2025, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))

    updated = await store.set_database_costs(
        {"p-user": 1234, "p-ws": 56, "p-not-ours": 99}, synced_at=synced_at
    )

    assert updated == 2
    user_row = await store.get_database(Tenant(Scope.GLOBAL, "u1"))
    ws_row = await store.get_database(Tenant(Scope.WORKSPACE, "w1"))
    untouched = await store.get_database(Tenant(Scope.WORKSPACE, "w2"))
    assert user_row is not None
    assert ws_row is not None
    assert untouched is not None
    assert (user_row.current_period_cost_cents, user_row.last_consumption_sync) == (1234, synced_at)
    assert user_row.last_consumption_sync is not None
    assert user_row.last_consumption_sync.tzinfo == UTC
    assert (ws_row.current_period_cost_cents, ws_row.last_consumption_sync) == (56, synced_at)
    assert (untouched.current_period_cost_cents, untouched.last_consumption_sync) == (0, None)


async def test_set_database_costs_with_nothing_to_set_updates_nothing(store: MetadataStore) -> None:
    assert await store.set_database_costs({}, synced_at=datetime.now(UTC)) == 0


async def test_database_row_repr_leaves_out_the_encrypted_uri() -> None:
    row = DatabaseRow("p", "b", "neondb", "iv:ciphertext:tag", 0, None)
    assert "ciphertext" not in repr(row)


async def test_a_row_the_user_brought_is_never_overwritten_nor_deleted(
    store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    tenant = Tenant(Scope.WORKSPACE, "ws-own")
    own = key.encrypt("postgresql://me@my.host/mine")
    async with await database.connect() as conn:
        await conn.execute(
            "INSERT INTO workspace_database (id, workspace_id, ownership_type, neon_project_id, "
            "neon_branch_id, neon_connection_uri, database_name) "
            "VALUES ('r1', 'ws-own', 'user', 'theirs', 'b', %s, 'mine')",
            (own,),
        )
        await conn.commit()
    await store.upsert_database(
        tenant, project_id="ours", branch_id="br", encrypted_uri=key.encrypt("x"), database_name="neondb"
    )
    assert not await store.delete_database(tenant)
    assert not await store.delete_database_of_project(tenant, project_id="theirs")
    row = await store.get_database(tenant)
    assert row is not None
    assert row.user_owned
    assert (row.project_id, row.encrypted_uri, row.database_name) == ("theirs", own, "mine")


async def test_a_project_has_one_claim_at_most(store: MetadataStore) -> None:
    born = datetime(2026, 1, 1, tzinfo=UTC)
    for uid, tenant in (("a", "t1"), ("b", "t2")):
        claimant = Claimant(uid=uid, namespace="ns", name=uid, created_at=born)
        await store.claim_tenant(kind="GlobalDatabase", tenant_id=tenant, claimant=claimant)
    assert await store.record_claim_project(
        kind="GlobalDatabase", tenant_id="t1", holder_uid="a", project_id="p"
    )
    with pytest.raises(StoreProjectClaimedError):
        await store.record_claim_project(
            kind="GlobalDatabase", tenant_id="t2", holder_uid="b", project_id="p"
        )
    holder = await store.project_holder(project_id="p")
    assert holder is not None
    assert (holder[0], holder[1], holder[2].uid) == ("GlobalDatabase", "t1", "a")

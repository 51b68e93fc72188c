"""What tenantdb adopt --dry-run reads from a Sim database: Sim's rows as they are, the platform's
database rows, only our key of each env var row, and nothing created where the operator never ran."""

from __future__ import annotations

import pytest
from psycopg.types.json import Json

from tenantdb.api import Scope, Tenant
from tenantdb.crypto import EncryptionKey
from tenantdb.store import MetadataStore, StoreSchemaError

from .conftest import Database, create_sim_tables


async def _tables(database: Database) -> set[str]:
    async with await database.connect() as conn:
        cursor = await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {row[0] for row in await cursor.fetchall()}


async def test_a_sim_database_the_operator_never_ran_on_reads_as_having_no_rows(
    database: Database, key: EncryptionKey
) -> None:
    await create_sim_tables(database)
    async with await database.connect() as conn:
        await conn.execute(
            'INSERT INTO "user" (id, name, email, created_at, updated_at) '
            "VALUES ('u1', 'A', 'a@x', now(), now())"
        )
    before = await _tables(database)
    async with await MetadataStore.open(database.url, cipher=key) as store:
        inventory = await store.read_adoption_inventory()
    assert inventory.user_ids == {"u1"}
    assert (inventory.databases, inventory.env_values, inventory.left_behind) == ([], {}, {})
    assert await _tables(database) == before  # no table of ours made, no migration run


async def test_the_platforms_rows_and_only_our_env_var_keys_are_read(
    database: Database, key: EncryptionKey
) -> None:
    await create_sim_tables(database)
    async with await MetadataStore.open(database.url, cipher=key) as store:
        await store.migrate()  # the seed's tables are ours, column for column
    async with await database.connect() as conn:
        for user in ("u1", "u2", "u3"):
            await conn.execute(
                'INSERT INTO "user" (id, name, email, created_at, updated_at) '
                "VALUES (%s, 'n', %s, now(), now())",
                (user, f"{user}@x"),
            )
        await conn.execute(
            "INSERT INTO workspace (id, name, owner_id, billed_account_user_id, archived_at) VALUES "
            "('w1', 'live', 'u1', 'u1', NULL), ('w2', 'gone', 'u1', 'u1', now())"
        )
        await conn.execute(
            "INSERT INTO user_global_database (id, user_id, ownership_type, neon_project_id, "
            "neon_branch_id, neon_connection_uri, database_name) VALUES "
            "('r1', 'u1', 'platform', 'p1', 'b1', 'c:t:g', 'neondb'), "
            "('r2', 'u2', 'user', 'p2', 'b2', 'c:t:g', 'mine')"
        )
        await conn.execute(
            "INSERT INTO environment (id, user_id, variables) VALUES "
            "('e1', 'u1', %s), ('e2', 'u2', %s), ('e3', 'u3', %s)",
            (
                Json({"GLOBAL_DB_URL": "iv:ct:tag", "OPENAI_API_KEY": "not-ours"}),
                Json({"OTHER": "x"}),
                Json("one encrypted string for the whole object"),
            ),
        )
        await conn.execute(
            "INSERT INTO workspace_environment (id, workspace_id, variables) VALUES ('we', 'w1', %s)",
            (Json({"AGENT_DB_URL": 42}),),
        )
    async with await MetadataStore.open(database.url, cipher=key) as store:
        await store.record_orphan(
            kind="WorkspaceDatabase", namespace="ns", name="w", project_id="p-kept", reason="Retain",
            disposition="retained",
        )  # fmt: skip
        inventory = await store.read_adoption_inventory()
    assert inventory.user_ids == {"u1", "u2", "u3"}
    assert {(w.id, w.archived) for w in inventory.workspaces} == {("w1", False), ("w2", True)}
    rows = {row.tenant: row for row in inventory.databases}
    assert rows[Tenant(Scope.GLOBAL, "u1")].ownership_type == "platform"
    assert rows[Tenant(Scope.GLOBAL, "u2")].ownership_type == "user"
    assert rows[Tenant(Scope.GLOBAL, "u2")].database_name == "mine"
    assert "c:t:g" not in repr(rows[Tenant(Scope.GLOBAL, "u1")])
    values = inventory.env_values
    assert set(values) == {
        Tenant(Scope.GLOBAL, "u1"),
        Tenant(Scope.GLOBAL, "u3"),
        Tenant(Scope.WORKSPACE, "w1"),
    }
    assert values[Tenant(Scope.GLOBAL, "u1")].encrypted == "iv:ct:tag"
    assert not values[Tenant(Scope.GLOBAL, "u3")].readable  # not a JSON object
    assert not values[Tenant(Scope.WORKSPACE, "w1")].readable  # not a string
    assert inventory.left_behind == {"p-kept": "retained"}


async def test_a_database_without_sims_tables_is_refused_clearly(
    database: Database, key: EncryptionKey
) -> None:
    async with await MetadataStore.open(database.url, cipher=key, standalone_env_tables=True) as store:
        await store.migrate()
        with pytest.raises(StoreSchemaError, match="user, workspace"):
            await store.read_adoption_inventory()

"""Migrations: the tables Sim reads, idempotence, replicas racing, Sim's own tables untouched."""

from __future__ import annotations

import asyncio

import pytest

from tenantdb.crypto import EncryptionKey
from tenantdb.store import MetadataStore, migrate_database
from tenantdb.store.migrate import migrate_from_environment
from tenantdb.store.migrations import MIGRATIONS, STANDALONE_ENV_TABLES

from .conftest import KEY_HEX, Database, create_sim_tables

ALL_MIGRATIONS = [migration.name for migration in MIGRATIONS]
STANDALONE_MIGRATIONS = [*ALL_MIGRATIONS, STANDALONE_ENV_TABLES.name]

EXPECTED_COLUMNS = {
    "user_global_database": {
        "id": ("text", "NO", None),
        "user_id": ("text", "NO", None),
        "ownership_type": ("text", "NO", "'platform'::text"),
        "neon_project_id": ("text", "NO", None),
        "neon_branch_id": ("text", "NO", None),
        "neon_connection_uri": ("text", "NO", None),
        "database_name": ("text", "NO", "'neondb'::text"),
        "current_period_cost_cents": ("integer", "NO", "0"),
        "last_consumption_sync": ("timestamp without time zone", "YES", None),
        "created_at": ("timestamp without time zone", "NO", "now()"),
        "updated_at": ("timestamp without time zone", "NO", "now()"),
    },
    "user_db_budget": {
        "id": ("text", "NO", None),
        "user_id": ("text", "NO", None),
        "budget_tier": ("text", "NO", "'free'::text"),
        "custom_budget_cents": ("integer", "YES", None),
        "budget_exceeded": ("boolean", "NO", "false"),
        "current_period_start": ("timestamp without time zone", "NO", "now()"),
        "total_cost_cents": ("integer", "NO", "0"),
        "last_sync": ("timestamp without time zone", "YES", None),
        "created_at": ("timestamp without time zone", "NO", "now()"),
        "updated_at": ("timestamp without time zone", "NO", "now()"),
    },
    "environment": {
        "id": ("text", "NO", None),
        "user_id": ("text", "NO", None),
        "variables": ("json", "NO", None),
        "updated_at": ("timestamp without time zone", "NO", "now()"),
    },
    "workspace_environment": {
        "id": ("text", "NO", None),
        "workspace_id": ("text", "NO", None),
        "variables": ("json", "NO", "'{}'::json"),
        "created_at": ("timestamp without time zone", "NO", "now()"),
        "updated_at": ("timestamp without time zone", "NO", "now()"),
    },
}
EXPECTED_COLUMNS["workspace_database"] = {
    ("workspace_id" if name == "user_id" else name): spec
    for name, spec in EXPECTED_COLUMNS["user_global_database"].items()
}


async def _columns(database: Database, table: str) -> dict[str, tuple[str, str, str | None]]:
    async with await database.connect() as conn:
        cursor = await conn.execute(
            """
            SELECT column_name, data_type, is_nullable, column_default
            FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s
            """,
            (table,),
        )
        return {name: (kind, nullable, default) for name, kind, nullable, default in await cursor.fetchall()}


async def _unique_columns(database: Database, table: str) -> set[str]:
    """Columns that alone carry a unique index (constraint or plain index)."""
    async with await database.connect() as conn:
        cursor = await conn.execute(
            """
            SELECT a.attname FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indnatts = 1 AND NOT i.indisprimary
            """,
            (table,),
        )
        return {row[0] for row in await cursor.fetchall()}


async def _schema_snapshot(database: Database) -> list[tuple[object, ...]]:
    """Everything about Sim's tables that a migration could change: columns, indexes, constraints."""
    tables = ["environment", "workspace_environment", "user", "workspace"]
    async with await database.connect() as conn:
        cursor = await conn.execute(
            """
            SELECT 'column', table_name::text, column_name || ' ' || data_type || ' ' || is_nullable
                   || ' ' || coalesce(column_default, '')
            FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = ANY(%(tables)s)
            UNION ALL
            SELECT 'index', tablename::text, indexdef FROM pg_indexes
            WHERE schemaname = current_schema() AND tablename = ANY(%(tables)s)
            UNION ALL
            SELECT 'constraint', c.relname::text, pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            WHERE k.connamespace = current_schema()::regnamespace AND c.relname = ANY(%(tables)s)
            ORDER BY 1, 2, 3
            """,
            {"tables": tables},
        )
        return list(await cursor.fetchall())


async def test_standalone_migrate_creates_the_tables_sim_reads_with_its_column_names_and_defaults(
    database: Database, key: EncryptionKey
) -> None:
    async with await MetadataStore.open(database.url, cipher=key, standalone_env_tables=True) as store:
        assert await store.migrate() == STANDALONE_MIGRATIONS
    for table, expected in EXPECTED_COLUMNS.items():
        assert await _columns(database, table) == expected, table
    assert await _unique_columns(database, "user_global_database") == {"user_id"}
    assert await _unique_columns(database, "workspace_database") == {"workspace_id"}
    assert await _unique_columns(database, "user_db_budget") == {"user_id"}
    assert await _unique_columns(database, "environment") == {"user_id"}
    assert await _unique_columns(database, "workspace_environment") == {"workspace_id"}
    assert set(await _columns(database, "tenantdb_orphaned_project")) == {
        "id",
        "neon_project_id",
        "kind",
        "namespace",
        "name",
        "reason",
        "created_at",
        "updated_at",
        "disposition",
        "project_name",
        "retained_at",
    }
    async with await database.connect() as conn:
        cursor = await conn.execute("SELECT name FROM tenantdb_schema_migrations ORDER BY name")
        assert [row[0] for row in await cursor.fetchall()] == sorted(STANDALONE_MIGRATIONS)
        cursor = await conn.execute(
            "SELECT indexname FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = 'workspace_environment' ORDER BY 1"
        )
        assert "workspace_environment_workspace_unique" in [row[0] for row in await cursor.fetchall()]


async def test_second_migrate_is_a_no_op(database: Database, key: EncryptionKey) -> None:
    async with await MetadataStore.open(database.url, cipher=key) as store:
        assert await store.migrate() == ALL_MIGRATIONS
        before = await _schema_snapshot(database)
        assert await store.migrate() == []
    assert await migrate_database(database.url) == []
    assert await _schema_snapshot(database) == before


async def test_concurrent_migrations_from_five_replicas_apply_everything_exactly_once(
    database: Database, key: EncryptionKey
) -> None:
    stores = [await MetadataStore.open(database.url, cipher=key, max_size=1) for _ in range(5)]
    try:
        results = await asyncio.gather(*(store.migrate() for store in stores))
    finally:
        for store in stores:
            await store.close()
    assert sorted(name for applied in results for name in applied) == sorted(ALL_MIGRATIONS)
    assert sum(1 for applied in results if applied) == 1  # one transaction did it all


async def test_existing_sim_tables_are_left_exactly_as_they_are(
    database: Database, key: EncryptionKey
) -> None:
    await create_sim_tables(database)
    before = await _schema_snapshot(database)
    async with await MetadataStore.open(database.url, cipher=key) as store:
        assert await store.migrate() == ALL_MIGRATIONS
    assert await _schema_snapshot(database) == before


async def test_migrate_database_needs_no_cipher(database: Database) -> None:
    assert await migrate_database(database.url) == ALL_MIGRATIONS


async def test_cli_migrate_prints_what_it_applied(
    database: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY", KEY_HEX)
    monkeypatch.setenv("TENANTDB_METADATA_DATABASE_URL", database.url)
    assert await migrate_from_environment() == 0
    assert capsys.readouterr().out.splitlines() == [f"applied {name}" for name in ALL_MIGRATIONS]
    assert await migrate_from_environment() == 0
    assert "up to date" in capsys.readouterr().out


async def test_cli_migrate_fails_with_exit_1_and_no_url_when_the_db_is_unreachable(
    database: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenantdb.testing.postgres import free_port

    url = f"postgresql://someone:{database.password}@127.0.0.1:{free_port()}/nowhere?connect_timeout=2"
    monkeypatch.setenv("ENCRYPTION_KEY", KEY_HEX)
    monkeypatch.setenv("TENANTDB_METADATA_DATABASE_URL", url)
    assert await migrate_from_environment() == 1
    captured = capsys.readouterr()
    assert "unreachable" in captured.err
    assert "connection refused" in captured.err
    for secret in (url, database.password, "someone"):
        assert secret not in captured.out + captured.err


async def test_cli_migrate_reports_missing_configuration_without_echoing_inputs(
    database: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("TENANTDB_ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("TENANTDB_METADATA_DATABASE_URL", database.url)
    assert await migrate_from_environment() == 2
    err = capsys.readouterr().err
    assert "encryption_key" in err.lower()
    assert database.url not in err
    assert database.password not in err

    monkeypatch.setenv("ENCRYPTION_KEY", KEY_HEX)
    monkeypatch.delenv("TENANTDB_METADATA_DATABASE_URL")
    assert await migrate_from_environment() == 2
    assert "TENANTDB_METADATA_DATABASE_URL is not set" in capsys.readouterr().err

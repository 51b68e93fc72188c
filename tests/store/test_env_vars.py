"""GLOBAL_DB_URL / AGENT_DB_URL in Sim's environment tables, in Sim's per-value format."""

from __future__ import annotations

import json
import re

import pytest
from psycopg.types.json import Json

from tenantdb.api import Scope, Tenant
from tenantdb.crypto import EncryptionKey
from tenantdb.store import MetadataStore, StoreIntegrityError
from tenantdb.testing.sim_schema import SimRows

from .conftest import Database, create_sim_tables, fetch_variables

URI = "postgresql://owner:pa%40ss@ep-cool-1.eu-central-1.aws.neon.tech/neondb?sslmode=require"
SIM_FORMAT = re.compile(r"[0-9a-f]{32}:[0-9a-f]+:[0-9a-f]{32}")


async def _insert_user_row(database: Database, variables: object) -> None:
    async with await database.connect() as conn:
        await conn.execute(
            "INSERT INTO environment (id, user_id, variables) VALUES ('e1', 'u1', %s)", (Json(variables),)
        )


# -- per-value (Sim's format, the default) ---------------------------------------------------------
async def test_per_value_stores_a_value_sim_decrypts_with_the_same_key(
    store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
    variables = await fetch_variables(database, "environment", "user_id", "u1")
    assert isinstance(variables, dict)
    assert set(variables) == {"GLOBAL_DB_URL"}
    assert SIM_FORMAT.fullmatch(variables["GLOBAL_DB_URL"])
    assert key.decrypt(variables["GLOBAL_DB_URL"]) == URI
    assert await store.get_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") == URI


async def test_per_value_keeps_sims_other_values_exactly_as_stored(
    store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    # Sim's values are never decrypted: one of them is even under another key.
    others = {
        "OPENAI_API_KEY": key.encrypt("sk-1"),
        "FOREIGN": EncryptionKey("ab" * 32).encrypt("x"),
        "É": "ü",
    }
    await _insert_user_row(database, others)
    await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
    await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI + "&x=1")
    variables = await fetch_variables(database, "environment", "user_id", "u1")
    assert isinstance(variables, dict)
    assert {k: v for k, v in variables.items() if k != "GLOBAL_DB_URL"} == others
    assert await store.get_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") == URI + "&x=1"


async def test_remove_takes_out_only_our_key_and_leaves_the_row(
    store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    other = key.encrypt("sk-1")
    await _insert_user_row(database, {"OPENAI_API_KEY": other})
    await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
    assert await store.remove_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") is True
    assert await store.remove_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") is False
    assert await fetch_variables(database, "environment", "user_id", "u1") == {"OPENAI_API_KEY": other}
    assert await store.get_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") is None


async def test_missing_rows_and_keys_read_as_none_and_remove_as_false(store: MetadataStore) -> None:
    assert await store.get_env_var(Tenant(Scope.GLOBAL, "nobody"), key="GLOBAL_DB_URL") is None
    assert await store.remove_env_var(Tenant(Scope.GLOBAL, "nobody"), key="GLOBAL_DB_URL") is False
    assert await store.get_env_var(Tenant(Scope.WORKSPACE, "nowhere"), key="AGENT_DB_URL") is None
    assert await store.remove_env_var(Tenant(Scope.WORKSPACE, "nowhere"), key="AGENT_DB_URL") is False


async def test_workspace_env_var_creates_a_complete_row(
    store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    await store.set_env_var(Tenant(Scope.WORKSPACE, "w1"), key="AGENT_DB_URL", value=URI)
    async with await database.connect() as conn:
        cursor = await conn.execute(
            "SELECT length(id), variables, created_at IS NOT NULL, updated_at IS NOT NULL "
            "FROM workspace_environment WHERE workspace_id = 'w1'"
        )
        row = await cursor.fetchone()
    assert row is not None
    id_length, variables, has_created_at, has_updated_at = row
    assert (id_length, has_created_at, has_updated_at) == (36, True, True)
    assert key.decrypt(variables["AGENT_DB_URL"]) == URI
    assert await store.get_env_var(Tenant(Scope.WORKSPACE, "w1"), key="AGENT_DB_URL") == URI
    assert await store.remove_env_var(Tenant(Scope.WORKSPACE, "w1"), key="AGENT_DB_URL") is True
    assert await fetch_variables(database, "workspace_environment", "workspace_id", "w1") == {}


async def test_set_bumps_updated_at(store: MetadataStore, database: Database) -> None:
    await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
    async with await database.connect() as conn:
        await conn.execute("UPDATE environment SET updated_at = '2000-01-01'")
        await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
        cursor = await conn.execute("SELECT updated_at > '2001-01-01' FROM environment")
        assert await cursor.fetchone() == (True,)


async def test_works_on_sims_own_tables_with_foreign_keys(database: Database, key: EncryptionKey) -> None:
    await create_sim_tables(database)
    sim = SimRows(database.url)
    await sim.register_user(user_id="u1")
    await sim.create_workspace("u1", workspace_id="w1")
    async with await MetadataStore.open(database.url, cipher=key) as store:
        await store.migrate()
        await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
        await store.set_env_var(Tenant(Scope.WORKSPACE, "w1"), key="AGENT_DB_URL", value=URI)
        assert await store.get_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") == URI
        assert await store.get_env_var(Tenant(Scope.WORKSPACE, "w1"), key="AGENT_DB_URL") == URI
        # Sim's foreign key: no environment row for a user Sim does not know.
        with pytest.raises(StoreIntegrityError, match="ForeignKeyViolation"):
            await store.set_env_var(Tenant(Scope.GLOBAL, "ghost"), key="GLOBAL_DB_URL", value=URI)


async def test_a_jsonb_variables_column_works_too(database: Database, key: EncryptionKey) -> None:
    async with await database.connect() as conn:
        await conn.execute(
            "CREATE TABLE environment (id text PRIMARY KEY, user_id text NOT NULL UNIQUE, "
            "variables jsonb NOT NULL, updated_at timestamp NOT NULL DEFAULT now())"
        )
        await conn.execute(
            """INSERT INTO environment (id, user_id, variables) VALUES ('e', 'u1', '{"A": "1"}')"""
        )
    async with await MetadataStore.open(database.url, cipher=key) as store:
        await store.migrate()
        await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
        assert await store.get_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") == URI
        assert await store.remove_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") is True
    assert await fetch_variables(database, "environment", "user_id", "u1") == {"A": "1"}


async def test_a_value_under_another_key_is_an_integrity_error_on_read(
    store: MetadataStore, database: Database
) -> None:
    await _insert_user_row(database, {"GLOBAL_DB_URL": EncryptionKey("cd" * 32).encrypt(URI)})
    with pytest.raises(StoreIntegrityError, match="cannot be decrypted"):
        await store.get_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL")
    # Writing does not need to decrypt it: the reconciler can repair the drift.
    await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
    assert await store.get_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") == URI


async def test_per_value_refuses_to_overwrite_a_whole_object_row(
    store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    blob = key.encrypt(json.dumps({"OPENAI_API_KEY": "sk-1"}))
    await _insert_user_row(database, blob)
    with pytest.raises(StoreIntegrityError, match="whole-object format"):
        await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
    assert await fetch_variables(database, "environment", "user_id", "u1") == blob


# -- the retired whole-object format ---------------------------------------------------------------
def test_the_whole_object_format_is_refused_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sim cannot read it (its code takes the object's keys): the setting no longer accepts it."""
    from pydantic import ValidationError

    from tenantdb.config import Settings

    monkeypatch.setenv("ENCRYPTION_KEY", "ab" * 32)
    monkeypatch.setenv("TENANTDB_ENV_VAR_FORMAT", "whole-object")
    with pytest.raises(ValidationError, match="per-value"):
        Settings()

"""Env-var writes to one row from many writers at once: none is ever lost."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from psycopg.types.json import Json

from tenantdb.api import Scope, Tenant
from tenantdb.crypto import EncryptionKey
from tenantdb.store import MetadataStore

from .conftest import Database, fetch_variables

WRITERS = 20


async def _sim_read_merge_write(
    database: Database, key: EncryptionKey, *, user_id: str, name: str, value: str, lock: bool
) -> None:
    """What Sim's environment route does in one transaction: read the object, merge, upsert it.

    ``lock=True`` reads with FOR UPDATE; ``lock=False`` is a plain read, as Sim's Drizzle code
    does today. The sleep widens the window between read and write, so races really happen.
    """
    read = "SELECT variables FROM environment WHERE user_id = %s" + (" FOR UPDATE" if lock else "")
    async with await psycopg.AsyncConnection.connect(database.url) as conn, conn.transaction():
        cursor = await conn.execute(read, (user_id,))
        row = await cursor.fetchone()
        variables = dict(row[0]) if row else {}
        await asyncio.sleep(0.01)
        variables[name] = key.encrypt(value)
        await conn.execute(
            """
            INSERT INTO environment (id, user_id, variables, updated_at) VALUES (%s, %s, %s, now())
            ON CONFLICT (user_id) DO UPDATE SET variables = EXCLUDED.variables, updated_at = now()
            """,
            (str(uuid.uuid4()), user_id, Json(variables)),
        )


async def _decrypted(database: Database, key: EncryptionKey, user_id: str) -> dict[str, str]:
    variables = await fetch_variables(database, "environment", "user_id", user_id)
    assert isinstance(variables, dict)
    return {name: key.decrypt(value) for name, value in variables.items()}


@pytest.mark.parametrize("row_exists", [True, False], ids=["existing-row", "missing-row"])
async def test_twenty_concurrent_writers_of_different_keys_all_survive(
    store: MetadataStore, database: Database, key: EncryptionKey, row_exists: bool
) -> None:
    if row_exists:
        await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="SIM_OWN", value="kept")
    await asyncio.gather(
        *(store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key=f"K{i}", value=f"v{i}") for i in range(WRITERS))
    )
    expected = {f"K{i}": f"v{i}" for i in range(WRITERS)} | ({"SIM_OWN": "kept"} if row_exists else {})
    assert await _decrypted(database, key, "u1") == expected
    async with await database.connect() as conn:
        cursor = await conn.execute("SELECT count(*) FROM environment")
        assert await cursor.fetchone() == (1,)


async def test_two_replicas_writing_concurrently_lose_nothing(
    database: Database, key: EncryptionKey, store: MetadataStore
) -> None:
    async with await MetadataStore.open(database.url, cipher=key) as replica:
        await asyncio.gather(
            *(
                (store if i % 2 else replica).set_env_var(
                    Tenant(Scope.WORKSPACE, "w1"), key=f"K{i}", value=f"v{i}"
                )
                for i in range(WRITERS)
            )
        )
    variables = await fetch_variables(database, "workspace_environment", "workspace_id", "w1")
    assert isinstance(variables, dict)
    assert {name: key.decrypt(value) for name, value in variables.items()} == {
        f"K{i}": f"v{i}" for i in range(WRITERS)
    }


async def test_concurrent_sets_and_removes_of_different_keys(
    store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    for i in range(0, WRITERS, 2):
        await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key=f"K{i}", value="old")
    await asyncio.gather(
        *(
            store.remove_env_var(Tenant(Scope.GLOBAL, "u1"), key=f"K{i}")
            if i % 2 == 0
            else store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key=f"K{i}", value=f"v{i}")
            for i in range(WRITERS)
        )
    )
    assert await _decrypted(database, key, "u1") == {f"K{i}": f"v{i}" for i in range(1, WRITERS, 2)}


async def test_sims_locking_read_merge_write_and_ours_interleave_without_loss(
    store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="SEED", value="seed")
    ours = [
        store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key=f"OURS{i}", value=f"o{i}") for i in range(WRITERS)
    ]
    sims = [
        _sim_read_merge_write(database, key, user_id="u1", name=f"SIM{i}", value=f"s{i}", lock=True)
        for i in range(WRITERS)
    ]
    interleaved = [writer for pair in zip(ours, sims, strict=True) for writer in pair]
    await asyncio.gather(*interleaved)
    assert await _decrypted(database, key, "u1") == (
        {"SEED": "seed"}
        | {f"OURS{i}": f"o{i}" for i in range(WRITERS)}
        | {f"SIM{i}": f"s{i}" for i in range(WRITERS)}
    )


async def test_our_writes_never_lose_a_write_of_sims_unlocked_read_merge_write(
    store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    """Sim reads without FOR UPDATE today. Its own writes can then drop a key we wrote meanwhile
    (the reconciler's drift check writes it again), but ours never drop one of Sim's: we merge
    into the latest committed object under the row lock."""
    await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="SEED", value="seed")

    async def sim_user_editing_variables() -> None:
        for i in range(10):  # one browser session: its saves come one after another
            await _sim_read_merge_write(
                database, key, user_id="u1", name=f"SIM{i}", value=f"s{i}", lock=False
            )

    async def operator_writing() -> None:
        await asyncio.gather(
            *(
                store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key=f"OURS{i}", value=f"o{i}")
                for i in range(WRITERS)
            )
        )

    await asyncio.gather(sim_user_editing_variables(), operator_writing())
    variables = await _decrypted(database, key, "u1")
    assert {f"SIM{i}": f"s{i}" for i in range(10)}.items() <= variables.items()
    # Drift repair: writing our keys again restores any that Sim's unlocked write dropped.
    for i in range(WRITERS):
        if await store.get_env_var(Tenant(Scope.GLOBAL, "u1"), key=f"OURS{i}") != f"o{i}":
            await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key=f"OURS{i}", value=f"o{i}")
    assert await _decrypted(database, key, "u1") == (
        {"SEED": "seed"}
        | {f"OURS{i}": f"o{i}" for i in range(WRITERS)}
        | {f"SIM{i}": f"s{i}" for i in range(10)}
    )

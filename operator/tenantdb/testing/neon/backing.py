"""The real PostgreSQL objects behind the emulated projects: one LOGIN role and one database each.

The role owns its database, and ``CONNECT`` on the database is revoked from ``PUBLIC`` so
that one tenant's role cannot reach another tenant's database (as on Neon, where projects
are separate servers). A disabled endpoint is ``ALLOW_CONNECTIONS false`` plus its backends
terminated, so new and existing connections really fail. A deleted project is put away the
same way (and its role made ``NOLOGIN``) until its recovery window ends; then it is dropped.

Passwords travel to the server inside ``CREATE ROLE``/``ALTER ROLE`` (DDL takes no bind parameters) as a
quoted literal; nothing here logs a statement.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg_pool import AsyncConnectionPool

__all__ = ["NameTakenError", "PostgresBacking"]

logger = logging.getLogger(__name__)


class NameTakenError(Exception):
    """The physical database or role name already exists on the server."""


class PostgresBacking:
    """Creates, disables and drops project databases through a small superuser pool."""

    def __init__(self, admin_url: str, *, max_connections: int = 8) -> None:
        # autocommit: CREATE/DROP DATABASE cannot run inside a transaction block.
        self._pool = AsyncConnectionPool(
            admin_url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True},
            open=False,
            name="neon-emulator",
        )

    async def open(self) -> None:
        await self._pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self._pool.close()

    async def create(self, *, database: str, role: str, password: str) -> None:
        """Create the role (LOGIN, with password) and the database it owns.

        Raises :class:`NameTakenError` when either name exists already (another emulator on
        the same server picked the same project digits); nothing is left behind then.
        """
        async with self._pool.connection() as conn:
            try:
                await conn.execute(
                    sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
            except errors.DuplicateObject as exc:
                raise NameTakenError(role) from exc
            try:
                await conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(database), sql.Identifier(role)
                    )
                )
                await conn.execute(
                    sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                        sql.Identifier(database)
                    )
                )
            except BaseException as exc:
                await self._drop(conn, database=None, role=role)
                if isinstance(exc, errors.DuplicateDatabase):
                    raise NameTakenError(database) from exc
                raise

    async def drop(self, *, database: str, role: str) -> None:
        """Drop the database (terminating its connections) and then the role; idempotent."""
        async with self._pool.connection() as conn:
            await self._drop(conn, database=database, role=role)

    async def set_connections_allowed(self, database: str, allowed: bool) -> None:
        """Let connections in, or refuse new ones and end the open ones."""
        async with self._pool.connection() as conn:
            await conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                    sql.Identifier(database), sql.Literal(allowed)
                )
            )
            if not allowed:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                )

    async def set_password(self, *, database: str, role: str, password: str) -> None:
        """A new password for the role, and the project's open sessions ended (as Neon drops
        its compute's connections): the old password is refused from now on."""
        async with self._pool.connection() as conn:
            await conn.execute(
                sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE (datname = %s OR usename = %s) AND pid <> pg_backend_pid()",
                (database, role),
            )

    async def put_away(self, *, database: str, role: str) -> None:
        """A deleted project, kept for recovery: nobody connects (open sessions end), data kept."""
        async with self._pool.connection() as conn:
            await conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
            await conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(database))
            )
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE (datname = %s OR usename = %s) AND pid <> pg_backend_pid()",
                (database, role),
            )

    async def bring_back(self, *, database: str, role: str, allow_connections: bool) -> None:
        """A recovered project: its role logs in again, its database as its endpoint allows."""
        async with self._pool.connection() as conn:
            await conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))
            await conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                    sql.Identifier(database), sql.Literal(allow_connections)
                )
            )

    async def exists(self, *, database: str, role: str) -> tuple[bool, bool]:
        """Whether the database and the role exist (for tests and leak checks)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = %s),"
                " EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)",
                (database, role),
            )
            row = await cur.fetchone()
        assert row is not None
        return bool(row[0]), bool(row[1])

    @staticmethod
    async def _drop(conn: psycopg.AsyncConnection[Any], *, database: str | None, role: str) -> None:
        if database is not None:
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
        try:
            await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        except errors.DependentObjectsStillExist:
            # The tenant made objects in a database outside its project (e.g. ``postgres``):
            # the role stays, but may no longer log in.
            logger.warning("role %s still owns objects elsewhere: made NOLOGIN, not dropped", role)
            await conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))

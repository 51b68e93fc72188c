"""Connections to the metadata DB: the operator's async pool, and one plain connection for the CLI.

Every connection is in autocommit mode: a single statement is its own transaction (one round
trip, no BEGIN/COMMIT), and operations of several statements open an explicit one, so nothing is
left half-done on a pooled connection and the pool always gets an idle connection back.

Each session runs in UTC because Sim's columns are ``timestamp`` without a time zone, and
``now()`` fills them in the session's zone.
"""

from __future__ import annotations

import math
from typing import Any, TypeAlias

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from tenantdb.store.errors import StoreError
from tenantdb.store.translate import translate_errors

__all__ = ["Connection", "Pool", "connect", "open_pool"]

Connection: TypeAlias = psycopg.AsyncConnection[TupleRow]
Pool: TypeAlias = AsyncConnectionPool[Connection]

POOL_NAME = "tenantdb-metadata"
# A fallback only: a URL that names its own application_name keeps it.
APPLICATION_NAME = "tenantdb-operator"


def _connection_kwargs(url: str, *, timeout_seconds: float) -> dict[str, Any]:
    """Check that ``url`` parses, and the connection parameters the store adds to it.

    libpq's parse errors quote the text they choke on, which here is a secret (it may hold the
    password), so the error raised says what is wrong without any of it and drops the cause.
    """
    if not url.strip():
        raise StoreError("the metadata DB URL is empty (set TENANTDB_METADATA_DATABASE_URL)")
    params: dict[str, Any] | None
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        params = None
    if params is None:
        # Raised outside the except block so that the parse error, which quotes the URL, is not
        # even kept as the implicit __context__.
        raise StoreError("the metadata DB URL is not a valid libpq connection URI or string")
    kwargs: dict[str, Any] = {"autocommit": True, "fallback_application_name": APPLICATION_NAME}
    if "connect_timeout" not in params:
        # Without it a black-holed host hangs a connection attempt for the OS's TCP timeout
        # (minutes); libpq takes whole seconds and treats anything under 2 as 2.
        kwargs["connect_timeout"] = max(2, math.ceil(timeout_seconds))
    return kwargs


async def _configure(conn: Connection) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


async def open_pool(url: str, *, max_size: int, timeout_seconds: float) -> Pool:
    """An open pool with at least one working connection, or ``StoreUnavailableError``.

    ``timeout_seconds`` bounds both the wait for the first connections and, later, every wait for a
    free connection; the pool keeps reconnecting in the background after an outage (with
    backoff), and ``check`` makes it discard connections the server closed meanwhile instead of
    handing them out.
    """
    if max_size < 1:
        raise ValueError("max_size must be at least 1")
    pool: Pool = AsyncConnectionPool(
        url,
        kwargs=_connection_kwargs(url, timeout_seconds=timeout_seconds),
        min_size=min(2, max_size),
        max_size=max_size,
        open=False,
        configure=_configure,
        check=AsyncConnectionPool.check_connection,
        name=POOL_NAME,
        timeout=timeout_seconds,
    )
    try:
        with translate_errors("open"):
            await pool.open(wait=True, timeout=timeout_seconds)
    except BaseException:
        await pool.close()
        raise
    return pool


async def connect(url: str, *, timeout_seconds: float) -> Connection:
    """One configured connection outside any pool (``tenantdb migrate``), or a store error."""
    kwargs = _connection_kwargs(url, timeout_seconds=timeout_seconds)
    with translate_errors("connect"):
        conn = await psycopg.AsyncConnection.connect(url, **kwargs)
        try:
            await _configure(conn)
        except BaseException:
            await conn.close()
            raise
    return conn

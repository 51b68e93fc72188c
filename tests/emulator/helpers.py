"""Small helpers shared by the emulator's tests (and its contract tests).

They never print or assert on a password or connection string: failures name statuses,
ids and error codes only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg

from tenantdb.testing.neon import NeonEmulator


@asynccontextmanager
async def api_client(
    neon: NeonEmulator, *, api_key: str | None = None, **kwargs: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for the emulator, authenticated with its key unless told otherwise."""
    key = neon.api_key if api_key is None else api_key
    async with httpx.AsyncClient(
        base_url=neon.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10, **kwargs
    ) as client:
        yield client


async def create_project(api: httpx.AsyncClient, **project: Any) -> dict[str, Any]:
    """``POST /projects`` with these ``project`` fields; the 201 body."""
    __tracebackhide__ = True
    response = await api.post("/projects", json={"project": project})
    assert response.status_code == 201, f"create answered {response.status_code}"
    body: dict[str, Any] = response.json()
    return body


def uri_of(created: dict[str, Any]) -> str:
    __tracebackhide__ = True
    uri: str = created["connection_uris"][0]["connection_uri"]
    return uri


class ConnectFailed(Exception):
    """A connection failed; only PostgreSQL's reason is kept (psycopg's frames hold the URI)."""


async def connect(uri: str, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
    """Open a connection; on failure raise :class:`ConnectFailed` without psycopg's frames.

    A failure report would otherwise show psycopg's local ``conninfo``, password included.
    """
    __tracebackhide__ = True
    try:
        return await psycopg.AsyncConnection.connect(uri, connect_timeout=5, **kwargs)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
    raise ConnectFailed(reason)


async def query_one(uri: str, statement: str = "select 1") -> Any:
    """Connect with ``uri`` and return the first column of the first row (None without rows)."""
    __tracebackhide__ = True  # pytest would show ``uri`` (with its password) in a failure report
    async with await connect(uri) as conn:
        cursor = await conn.execute(statement)  # type: ignore[arg-type]
        if cursor.description is None:  # a statement without rows (DDL)
            return None
        row = await cursor.fetchone()
        assert row is not None
        return row[0]


async def connection_error(uri: str) -> str | None:
    """None if ``uri`` connects, else PostgreSQL's reason (which never holds the password)."""
    __tracebackhide__ = True
    try:
        await query_one(uri)
    except ConnectFailed as exc:
        return str(exc)
    return None

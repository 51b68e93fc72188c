"""Fixtures shared by every test: a real PostgreSQL server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tenantdb.testing.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server (TLS and SCRAM where the binaries allow) for the session."""
    with PostgresServer() as server:
        yield server

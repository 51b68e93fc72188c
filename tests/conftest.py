"""Fixtures shared by every test: a real PostgreSQL server for the whole session."""

from __future__ import annotations

import faulthandler
import sys
from collections.abc import Iterator

import pytest

from tenantdb.testing.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server (TLS and SCRAM where the binaries allow) for the session."""
    with PostgresServer() as server:
        yield server


def pytest_unconfigure(config: pytest.Config) -> None:
    # The interpreter's exit joins every executor worker; one left blocked would hang the run
    # long after the summary. Fail within a minute instead, with every thread's stack printed.
    faulthandler.dump_traceback_later(60, exit=True, file=sys.__stderr__)

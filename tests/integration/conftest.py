"""A LocalStack per test: real PostgreSQL, the Neon emulator, the Kubernetes emulator, kopf."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from tenantdb.testing.neon.calls import CallRecord
from tenantdb.testing.postgres import PostgresServer
from tenantdb.testing.stack import LocalStack

__all__ = ["one_by_one"]

FLEET_LIST_SEARCH = "tenantdb-"  # the fleet observation lists every project with our prefix


def one_by_one(calls: list[CallRecord]) -> list[CallRecord]:
    """The calls, without the fleet observation's project lists (a pass every 2 s in tests):
    what a reconcile or a delete itself sent."""
    return [
        c for c in calls if not (c.route == "GET /projects" and c.query.get("search") == FLEET_LIST_SEARCH)
    ]


@pytest.fixture
async def stack(postgres_server: PostgresServer) -> AsyncIterator[LocalStack]:
    async with LocalStack(postgres=postgres_server) as local:
        yield local


@pytest.fixture
async def operator(stack: LocalStack) -> AsyncIterator[LocalStack]:
    await stack.start_operator()
    yield stack
    await stack.stop_operator()


@pytest.fixture(autouse=True)
def _all_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

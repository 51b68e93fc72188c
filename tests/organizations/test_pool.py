"""The pool against the Neon emulator serving several organisations: Ready, room, revoked keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from tenantdb.api.organization import NeonOrganizationSpec
from tenantdb.config import Settings
from tenantdb.neon import NeonClient
from tenantdb.reconcile.organizations import OrganizationPool
from tenantdb.reconcile.organizations.clients import organization_client
from tenantdb.testing.neon import NeonEmulator
from tenantdb.testing.postgres import PostgresServer

pytestmark = pytest.mark.filterwarnings("ignore::platformdirs.api.RuntimeDirWarning")


class Cluster:
    """NeonOrganization objects and Secrets as the API server would hold them."""

    def __init__(self) -> None:
        self.organizations: dict[str, dict[str, Any]] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.statuses: dict[str, Mapping[str, Any]] = {}

    def add(self, name: str, org_id: str, key: str, **spec: Any) -> None:
        self.secrets[("tenantdb", f"neon-{name}")] = {"NEON_API_KEY": key}
        self.organizations[name] = {
            "metadata": {"name": name, "generation": 1},
            "spec": {
                "organizationId": org_id,
                "apiKeySecretRef": {"name": f"neon-{name}", "namespace": "tenantdb"},
                **spec,
            },
        }

    async def list_organizations(self) -> list[Mapping[str, Any]]:
        return list(self.organizations.values())

    async def read_secret(self, *, namespace: str, name: str) -> dict[str, str] | None:
        return self.secrets.get((namespace, name))

    async def patch_organization_status(self, *, name: str, status: Mapping[str, Any]) -> None:
        self.statuses[name] = status


@pytest.fixture
async def neon(postgres_server: PostgresServer) -> AsyncIterator[NeonEmulator]:
    async with NeonEmulator(postgres_admin_url=postgres_server.admin_url) as emulator:
        emulator.add_organization("org-b")
        emulator.add_organization("org-c")
        yield emulator


def _pool(neon: NeonEmulator, cluster: Cluster, counts: dict[str, int]) -> OrganizationPool:
    settings = Settings(
        encryption_key="00" * 32, neon_api_key="unused", neon_api_url=neon.base_url,
        metadata_database_url="postgresql://x",
    )  # fmt: skip

    def make(spec: NeonOrganizationSpec, key: str) -> NeonClient:
        return organization_client(spec, key, settings=settings)

    async def count() -> dict[str, int]:
        return counts

    return OrganizationPool(source=cluster, count_tenants=count, make_client=make)


def _ready(status: Mapping[str, Any]) -> str:
    return str(status["conditions"][0]["status"])


async def test_each_organisation_is_checked_with_its_own_key_and_reports_its_room(neon: NeonEmulator) -> None:
    cluster = Cluster()
    cluster.add("a", neon.org_id, neon.api_key, maxProjects=10)
    cluster.add("b", "org-b", "org-b-key", maxProjects=10)
    cluster.add("wrong", "org-b", "org-c-key")  # a key of another organisation
    pool = _pool(neon, cluster, {"a": 4, "b": 9})
    await pool.refresh()
    assert _ready(cluster.statuses["a"]) == "True"
    assert cluster.statuses["a"]["projects"] == 4
    assert cluster.statuses["a"]["room"] == 6
    assert cluster.statuses["a"]["callsPerMinute"] == 2  # the key check: /auth and /users/me/organizations
    assert cluster.statuses["b"]["room"] == 1
    assert _ready(cluster.statuses["wrong"]) == "False"
    assert "org-b" in cluster.statuses["wrong"]["conditions"][0]["message"]
    assert pool.choose() == "a"
    for _ in range(6):
        pool.reserve("a")  # placements between two refreshes count at once
    assert pool.choose() == "b"
    pool.reserve("b")
    assert pool.choose() is None  # every organisation at its maxProjects


async def test_a_revoked_key_says_so_and_signups_go_elsewhere(neon: NeonEmulator) -> None:
    cluster = Cluster()
    cluster.add("a", neon.org_id, neon.api_key)
    cluster.add("b", "org-b", "org-b-key")
    pool = _pool(neon, cluster, {"a": 0, "b": 5})
    await pool.refresh()
    assert pool.choose() == "a"
    neon.options.api_key = "revoked-in-the-console"
    await pool.refresh()
    assert _ready(cluster.statuses["a"]) == "False"
    assert cluster.statuses["a"]["conditions"][0]["reason"] == "KeyRejected"
    assert pool.choose() == "b"


async def test_cordoned_organisations_take_no_new_tenants(neon: NeonEmulator) -> None:
    cluster = Cluster()
    cluster.add("a", neon.org_id, neon.api_key, cordoned=True)
    cluster.add("b", "org-b", "org-b-key", maxProjects=1)
    pool = _pool(neon, cluster, {"b": 1})
    await pool.refresh()
    assert pool.choose() is None
    assert "cordoned" in cluster.statuses["a"]["conditions"][0]["message"]
    assert "full" in cluster.statuses["b"]["conditions"][0]["message"]
    del cluster.organizations["a"]
    await pool.refresh()
    assert set(pool.members) == {"b"}

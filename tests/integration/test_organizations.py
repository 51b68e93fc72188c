"""Several Neon organisations as one pool: kopf for real against the Kubernetes emulator, the
Neon emulator serving three organisations (each its own key and project limit) and a real
PostgreSQL server.

What a platform would notice: signups spread over the organisations by the placement rule
(most room first, ties by fewest tenants, then name), each recorded in ``status.organization``
and made with that organisation's own key; none past an organisation's ``maxProjects``; an
organisation Neon refuses for its project limit takes no more (the signup is made elsewhere);
one whose key is revoked says so on its status and its tenants' conditions, and new signups
become Ready elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from typing import Any

import httpx

from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import database_budget, global_database, workspace_database

NAMESPACE = "default"


def _secret(name: str, key: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {"NEON_API_KEY": base64.b64encode(key.encode()).decode()},
    }


def _organization(name: str, org_id: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "NeonOrganization",
        "metadata": {"name": name},
        "spec": {
            "organizationId": org_id,
            "apiKeySecretRef": {"name": f"neon-{name}", "namespace": NAMESPACE},
            **spec,
        },
    }


async def _define(stack: LocalStack, name: str, org_id: str, **spec: Any) -> None:
    assert stack.neon is not None
    organization = stack.neon.add_organization(org_id, max_projects=spec.pop("neon_limit", None))
    await stack.apply(_secret(f"neon-{name}", organization.api_key))
    await stack.apply(_organization(name, org_id, **spec))


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition["type"] == kind:
            return dict(condition)
    return {}


async def _signup(stack: LocalStack, user: str) -> None:
    await stack.apply(global_database(f"user-{user}", user))


async def _organization_of(stack: LocalStack, user: str) -> str:
    obj = await stack.wait_ready("GlobalDatabase", f"user-{user}")
    assert obj is not None
    return str(obj["status"]["organization"])


async def test_signups_spread_over_the_pool_and_go_elsewhere_when_an_organisation_fails(
    stack: LocalStack,
) -> None:
    # a: room for 4. b: room for 3 by its spec, but Neon itself allows it 1 project. c: 3.
    await _define(stack, "a", "org-a", maxProjects=4)
    await _define(stack, "b", "org-b", maxProjects=3, neon_limit=1)
    await _define(stack, "c", "org-c", maxProjects=3)
    await stack.start_operator(organization_refresh_seconds=1.0)
    assert stack.neon is not None

    # Three signups, one after the other: the most room first, ties by name: a, b, c.
    first = {}
    for user in ("u1", "u2", "u3"):
        await _signup(stack, user)
        first[user] = await _organization_of(stack, user)
    assert first == {"u1": "a", "u2": "b", "u3": "c"}
    # Each made with its organisation's key, in that organisation.
    assert [len(stack.neon.projects(org)) for org in ("org-a", "org-b", "org-c")] == [1, 1, 1]
    assert stack.neon.projects(stack.neon.org_id) == []  # nothing in the implicit organisation
    # The pool's status: projects held and room left, per organisation.
    await eventually(lambda: _status_is(stack, "a", projects=1, room=3), what="a's status counts its tenant")

    # c's key is revoked in Neon's console: c says so, and so does its tenant.
    for organization in stack.neon.options.organizations:
        if organization.org_id == "org-c":
            organization.revoked = True
    await stack.wait_for(
        "NeonOrganization",
        "c",
        lambda obj: _condition(obj, "Ready").get("status") == "False",
        what="Ready=False on the revoked organisation",
    )
    await stack.wait_for(
        "GlobalDatabase",
        "user-u3",
        lambda obj: _condition(obj, "Synced").get("reason") == "OrganizationUnavailable",
        what="the tenant of the revoked organisation told so",
    )

    # Three more signups at once: none goes to c (revoked); b's create is refused by Neon
    # (its own limit, 1) and the signup is made in a instead; all three become Ready.
    await asyncio.gather(*(_signup(stack, user) for user in ("u4", "u5", "u6")))
    later = {user: await _organization_of(stack, user) for user in ("u4", "u5", "u6")}
    assert set(later.values()) == {"a"}
    # None past an organisation's maxProjects (a: 4) nor Neon's limit (b: 1).
    placed = Counter([*first.values(), *later.values()])
    assert placed == {"a": 4, "b": 1, "c": 1}
    assert len(stack.neon.projects("org-a")) == 4
    assert len(stack.neon.projects("org-b")) == 1

    # The pool is full (a at its maxProjects, b refused by Neon, c revoked): a new signup waits,
    # saying why, and nothing is created.
    await _signup(stack, "u7")
    waiting = await stack.wait_for(
        "GlobalDatabase",
        "user-u7",
        lambda obj: _condition(obj, "Ready").get("reason") == "NoOrganization",
        what="NoOrganization on a signup the pool has no room for",
    )
    assert not (waiting or {}).get("status", {}).get("projectId")
    assert len(stack.neon.projects()) == 6


async def _status_is(stack: LocalStack, name: str, **expected: Any) -> bool:
    obj = await stack.get("NeonOrganization", name)
    status = (obj or {}).get("status") or {}
    return all(status.get(key) == value for key, value in expected.items())


async def test_without_a_neon_organisation_tenants_stay_in_the_implicit_one(operator: LocalStack) -> None:
    await operator.apply(global_database("user-solo", "solo"))
    obj = await operator.wait_ready("GlobalDatabase", "user-solo")
    assert "organization" not in obj["status"]
    assert operator.neon is not None
    assert len(operator.neon.projects(operator.neon.org_id)) == 1
    rows = await operator.metadata_query("select count(*) from tenantdb_tenant_organization")
    assert rows == [(0,)]


HALF_A_BUDGET = 100_000  # CU-seconds: 295 cents; two of them (590) exceed the free tier's 500


async def test_a_budget_counts_the_spend_of_every_organisation_and_suspends_in_each(
    stack: LocalStack,
) -> None:
    # Each takes one tenant: alice's first database goes to a (ties by name), her second to b.
    # Each alone is within her budget;
    # together they are over it, which only a sync that asks both organisations can tell.
    await _define(stack, "a", "org-a", maxProjects=1)
    await _define(stack, "b", "org-b", maxProjects=1)
    await stack.start_operator(organization_refresh_seconds=1.0, consumption_sync_interval_seconds=1.0)
    assert stack.neon is not None
    await stack.apply(database_budget("user-alice", "alice"))
    await stack.apply(global_database("user-alice", "alice"))
    assert await _organization_of(stack, "alice") == "a"
    await stack.apply(workspace_database("ws-alice", "alice", "ws-alice"))
    workspace = await stack.wait_ready("WorkspaceDatabase", "ws-alice")
    assert workspace["status"]["organization"] == "b"
    for org_id in ("org-a", "org-b"):
        (project,) = stack.neon.projects(org_id)
        stack.neon.set_usage(project["id"], compute_unit_seconds=HALF_A_BUDGET)

    # Both suspended: each endpoint disabled with its own organisation's key.
    for kind, name in (("GlobalDatabase", "user-alice"), ("WorkspaceDatabase", "ws-alice")):
        await stack.wait_for(
            kind,
            name,
            lambda obj: (obj or {}).get("status", {}).get("phase") == "Suspended",
            what="Suspended for the budget",
        )
    for org_id in ("org-a", "org-b"):
        (project,) = stack.neon.projects(org_id)
        endpoints = [
            c for c in stack.neon.calls() if c.route == "PATCH /projects/{project_id}/endpoints/{endpoint_id}"
        ]
        assert any(project["id"] in c.path and c.status == 200 for c in endpoints), org_id
    # The consumption asked of each organisation (Neon's route is per organisation).
    asked = {c.query.get("org_id") for c in stack.neon.calls() if "consumption" in c.route}
    assert {"org-a", "org-b"} <= asked


async def test_the_orphan_sweep_deletes_each_organisations_strays_with_its_own_key(stack: LocalStack) -> None:
    assert stack.neon is not None
    await _define(stack, "b", "org-b", maxProjects=10)
    await stack.start_operator(
        organization_refresh_seconds=1.0, sweep_interval_seconds=1.0, create_landing_seconds=1.0
    )
    # Two tenants in b: one lives on, one is deleted with deletionPolicy Retain (kept on purpose).
    await _signup(stack, "stays")
    assert await _organization_of(stack, "stays") == "b"
    await stack.apply(global_database("user-kept", "kept", deletionPolicy="Retain"))
    kept = await stack.wait_ready("GlobalDatabase", "user-kept")
    await stack.delete("GlobalDatabase", "user-kept")
    await stack.wait_gone("GlobalDatabase", "user-kept")
    # A stray in each organisation (a create that landed after its resource was gone), made
    # with that organisation's key: only that key can see and delete it.
    strays = {
        "org-b": "tenantdb-g-ghost-0f1e2d3c-0000-4000-8000-0000000000b1",
        stack.neon.org_id: "tenantdb-g-ghost-0f1e2d3c-0000-4000-8000-0000000000a1",
    }
    keys = {stack.neon.org_id: stack.neon.api_key, "org-b": "org-b-key"}
    for org_id, name in strays.items():
        headers = {"Authorization": f"Bearer {keys[org_id]}"}
        async with httpx.AsyncClient(base_url=stack.neon.base_url, headers=headers, timeout=10) as neon:
            answer = await neon.post("/projects", json={"project": {"name": name}})
            assert answer.status_code == 201

    def names(org_id: str) -> set[str]:
        assert stack.neon is not None
        return {p["name"] for p in stack.neon.projects(org_id)}

    async def swept() -> bool:
        return not any(name in names(org_id) for org_id, name in strays.items())

    await eventually(swept, timeout=30, what="each organisation's stray swept")
    live = await stack.wait_ready("GlobalDatabase", "user-stays")
    assert names("org-b") == {live["status"]["projectName"], kept["status"]["projectName"]}
    await stack.stop_operator()

"""Every answer of the emulator, success and error alike, is one the Neon API spec allows.

Each exchange is validated as it arrives (see ``CheckedClients`` in conftest): requests
too, except where a test sends a deliberately invalid one (``checked.raw``). Each test then
asserts which statuses it saw, so the coverage of the operations the operator uses is
explicit here.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import httpx
import pytest

from tests.contract.conftest import CheckedClients
from tests.contract.spec import ContractViolation, NeonSpec


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def _create(client: httpx.AsyncClient, **project: Any) -> dict[str, Any]:
    response = await client.post("/projects", json={"project": project})
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


async def test_create_project(checked: CheckedClients) -> None:
    api, raw, neon = checked.api, checked.raw, checked.neon
    await _create(
        api, name="full", region_id="aws-us-east-2", pg_version=16, org_id=neon.org_id,
        branch={"name": "main", "database_name": "appdb", "role_name": "app"},
        default_endpoint_settings={"autoscaling_limit_min_cu": 0.25, "autoscaling_limit_max_cu": 2,
                                   "suspend_timeout_seconds": 300},
        settings={"quota": {"compute_time_seconds": 0, "active_time_seconds": 3600}},
        history_retention_seconds=0,
    )  # fmt: skip
    await _create(api)  # every field left to its default
    await api.post("/projects", json={"project": {"region_id": "mars-north-1"}})  # 400
    await raw.post("/projects", json={"project": {"pg_version": 12}})  # 400 (outside the spec's 14..18)
    await api.post("/projects", json={"project": {"org_id": "org-someone-else"}})  # 404
    neon.options.max_projects = 2
    await api.post("/projects", json={"project": {"name": "one-too-many"}})  # 422
    assert checked.statuses("createProject") == {201, 400, 404, 422}


async def test_list_projects(checked: CheckedClients) -> None:
    api, raw = checked.api, checked.raw
    await api.get("/projects")  # empty: no pagination
    for n in range(3):
        await _create(api, name=f"listed-{n}")
    first = (await api.get("/projects", params={"limit": 2, "search": "listed"})).json()
    await api.get("/projects", params={"limit": 2, "cursor": first["pagination"]["cursor"]})
    await api.get("/projects", params={"org_id": checked.neon.org_id, "timeout": 1000})
    deleted = first["projects"][0]["id"]
    await api.delete(f"/projects/{deleted}")
    await api.get("/projects", params={"recoverable": "true"})
    await api.get("/projects", params={"cursor": "no-such-cursor"})  # 400
    await raw.get("/projects", params={"limit": 0})  # 400 (outside the spec's 1..400)
    await api.get("/projects", params={"org_id": "org-someone-else"})  # 404
    assert checked.statuses("listProjects") == {200, 400, 404}


async def test_get_update_and_delete_project(checked: CheckedClients) -> None:
    api, raw, neon = checked.api, checked.raw, checked.neon
    created = await _create(api, name="crud")
    project_id = created["project"]["id"]
    await api.get(f"/projects/{project_id}")
    await api.get("/projects/no-such-project-1")  # 404
    await api.patch(
        f"/projects/{project_id}",
        json={"project": {"name": "renamed", "settings": {"quota": {"logical_size_bytes": 0}}}},
    )
    await raw.patch(f"/projects/{project_id}", json={"project": {"name": ""}})  # 400 (outside the spec)
    neon.options.operation_seconds = 60
    await api.patch(
        f"/projects/{project_id}/endpoints/{created['endpoints'][0]['id']}",
        json={"endpoint": {"suspend_timeout_seconds": 60}},
    )  # starts a long operation
    await api.patch(f"/projects/{project_id}", json={"project": {"name": "locked"}})  # 423
    await api.delete(f"/projects/{project_id}")  # 423
    neon.options.operation_seconds = 0
    other = await _create(api, name="to-delete")
    await api.delete(f"/projects/{other['project']['id']}")
    await api.delete(f"/projects/{other['project']['id']}")  # 404
    assert checked.statuses("getProject") == {200, 404}
    assert checked.statuses("updateProject") == {200, 400, 423}
    assert checked.statuses("deleteProject") == {200, 404, 423}


async def test_recover_project(checked: CheckedClients) -> None:
    api = checked.api
    created = await _create(api, name="recoverable")
    project_id = created["project"]["id"]
    await api.post(f"/projects/{project_id}/recover")  # 400: not deleted
    await api.delete(f"/projects/{project_id}")
    await api.get("/projects", params={"recoverable": "true", "search": "recoverable"})
    await api.post(f"/projects/{project_id}/recover")
    await api.post("/projects/no-such-project-1/recover")  # 404
    assert checked.statuses("recoverProject") == {200, 400, 404}


async def test_operations(checked: CheckedClients) -> None:
    api, neon = checked.api, checked.neon
    neon.options.operation_seconds = 30
    created = await _create(api, name="ops")
    project_id = created["project"]["id"]
    for operation in created["operations"]:
        await api.get(f"/projects/{project_id}/operations/{operation['id']}")
    await api.get(f"/projects/{project_id}/operations/{uuid.uuid4()}")  # 404
    assert checked.statuses("getProjectOperation") == {200, 404}


async def test_endpoints(checked: CheckedClients) -> None:
    api, raw, neon = checked.api, checked.raw, checked.neon
    created = await _create(api, name="eps")
    project_id, endpoint_id = created["project"]["id"], created["endpoints"][0]["id"]
    path = f"/projects/{project_id}/endpoints/{endpoint_id}"
    await api.get(f"/projects/{project_id}/endpoints")
    await api.get("/projects/no-such-project-1/endpoints")  # 404
    await api.get(path)
    await api.get(f"/projects/{project_id}/endpoints/ep-none-00000000")  # 404
    await api.patch(path, json={"endpoint": {"disabled": True}})
    await api.patch(
        path,
        json={
            "endpoint": {"disabled": False, "autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 1}
        },
    )
    await api.patch(path, json={"endpoint": {"autoscaling_limit_min_cu": 4}})  # 400: above the max
    await raw.patch(path, json={"endpoint": {"suspend_timeout_seconds": 10**7}})  # 400 (outside the spec)
    neon.options.operation_seconds = 60
    await api.patch(path, json={"endpoint": {"disabled": True}})
    await api.patch(path, json={"endpoint": {"disabled": False}})  # 423
    assert checked.statuses("listProjectEndpoints") == {200, 404}
    assert checked.statuses("getProjectEndpoint") == {200, 404}
    assert checked.statuses("updateProjectEndpoint") == {200, 400, 423}


async def test_connection_uri(checked: CheckedClients) -> None:
    api, raw = checked.api, checked.raw
    created = await _create(api, name="uri")
    path = f"/projects/{created['project']['id']}/connection_uri"
    names = {"database_name": "neondb", "role_name": "neondb_owner"}
    await api.get(path, params=names)
    await api.get(
        path,
        params={
            **names,
            "pooled": "true",
            "branch_id": created["branch"]["id"],
            "endpoint_id": created["endpoints"][0]["id"],
        },
    )
    await api.get(path, params={**names, "role_name": "nobody"})  # 404
    await raw.get(path, params={"database_name": "neondb"})  # 400: role_name is required
    assert checked.statuses("getConnectionURI") == {200, 400, 404}


async def test_branches_roles_and_databases(checked: CheckedClients) -> None:
    api, neon = checked.api, checked.neon
    created = await _create(api, name="roles", branch={"database_name": "simdb", "role_name": "sim"})
    project_id = created["project"]["id"]
    branch = f"/projects/{project_id}/branches/{created['branch']['id']}"
    missing = f"/projects/{project_id}/branches/br-none-00000000"
    await api.get(f"/projects/{project_id}/branches")
    await api.get(f"/projects/{project_id}/branches", params={"search": "main"})
    await api.get("/projects/no-such-project-1/branches")  # 404
    await api.get(f"{branch}/roles")
    await api.get(f"{missing}/roles")  # 404
    await api.get(f"{branch}/roles/sim")
    await api.get(f"{branch}/roles/nobody")  # 404
    await api.get(f"{branch}/databases")
    await api.get(f"{missing}/databases")  # 404
    await api.get(f"{branch}/roles/sim/reveal_password")
    await api.get(f"{branch}/roles/nobody/reveal_password")  # 404
    unstored = await _create(api, name="unstored", store_passwords=False)
    unstored_branch = f"/projects/{unstored['project']['id']}/branches/{unstored['branch']['id']}"
    await api.get(f"{unstored_branch}/roles/neondb_owner/reveal_password")  # 412
    await api.post(f"{branch}/roles/sim/reset_password")
    await api.post(f"{branch}/roles/nobody/reset_password")  # 404
    neon.options.operation_seconds = 60
    await api.post(f"{unstored_branch}/roles/neondb_owner/reset_password")  # a long operation
    await api.post(f"{unstored_branch}/roles/neondb_owner/reset_password")  # 423
    assert checked.statuses("listProjectBranches") == {200, 404}
    assert checked.statuses("listProjectBranchRoles") == {200, 404}
    assert checked.statuses("getProjectBranchRole") == {200, 404}
    assert checked.statuses("listProjectBranchDatabases") == {200, 404}
    assert checked.statuses("getProjectBranchRolePassword") == {200, 404, 412}
    assert checked.statuses("resetProjectBranchRolePassword") == {200, 404, 423}


async def test_consumption(checked: CheckedClients) -> None:
    api, raw, neon = checked.api, checked.raw, checked.neon
    ids = [(await _create(api, name=f"c{n}"))["project"]["id"] for n in range(3)]
    neon.set_usage(ids[0], compute_unit_seconds=3600, root_branch_bytes_month=5 * 10**9)
    now = datetime.datetime.now(datetime.UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    base = [
        ("org_id", neon.org_id),
        ("from", _stamp(month)),
        ("to", _stamp(now + datetime.timedelta(days=1))),
        ("granularity", "daily"),
        ("metrics", "compute_unit_seconds"),
        ("metrics", "root_branch_bytes_month"),
    ]
    page = (await api.get("/consumption_history/v2/projects", params=[*base, ("limit", "2")])).json()
    await api.get(
        "/consumption_history/v2/projects",
        params=[*base, ("limit", "2"), ("cursor", page["pagination"]["cursor"])],
    )
    await api.get("/consumption_history/v2/projects", params=[*base, ("project_ids", f"{ids[0]},{ids[1]}")])
    hourly = [("granularity", "hourly") if key == "granularity" else (key, value) for key, value in base]
    await api.get(
        "/consumption_history/v2/projects",
        params=[
            ("from" if k == "from" else k, _stamp(now - datetime.timedelta(hours=3)) if k == "from" else v)
            for k, v in hourly
        ],
    )
    await raw.get("/consumption_history/v2/projects", params=base[1:])  # 400: org_id missing
    too_many = [*base, *(("project_ids", f"project-{n:08d}") for n in range(101))]
    await raw.get("/consumption_history/v2/projects", params=too_many)  # 400: over 100 ids
    await api.get(
        "/consumption_history/v2/projects", params=[("org_id", "org-someone-else"), *base[1:]]
    )  # 404
    await api.get(
        "/consumption_history/v2/projects",
        params=[*[(k, v) for k, v in base if k != "from"], ("from", "2024-03-01T00:00:00Z")],
    )  # 406
    assert checked.statuses("getConsumptionHistoryPerProjectV2") == {200, 400, 404, 406}


async def test_authentication_rate_limits_and_outages(checked: CheckedClients) -> None:
    api, raw, neon = checked.api, checked.raw, checked.neon
    created = await _create(api, name="faults")
    project_id = created["project"]["id"]
    await raw.get("/projects", headers={"Authorization": ""})  # 401: no key
    await api.get(f"/projects/{project_id}", headers={"Authorization": "Bearer wrong"})  # 401
    neon.options.route_rate_limit_per_second = 1
    await api.get(f"/projects/{project_id}/endpoints")
    limited = await api.get(f"/projects/{project_id}/endpoints")  # 429
    assert limited.headers["Retry-After"].isdigit()
    neon.options.route_rate_limit_per_second = None
    neon.options.down = True
    await api.get("/projects")  # 503
    await api.post("/projects", json={"project": {}})  # 503
    neon.options.down = False
    neon.options.error_rate = 1.0
    neon.options.fault_after_processing = False
    for _ in range(4):
        await api.get(f"/projects/{project_id}")  # 500 or 503
    assert checked.statuses("listProjects") == {401, 503}
    assert checked.statuses("listProjectEndpoints") == {200, 429}
    assert checked.statuses("createProject") == {201, 503}
    assert checked.statuses("getProject") - {401} <= {500, 503}


def test_the_validator_catches_a_broken_answer(neon_spec: NeonSpec) -> None:
    """The checks above mean something: a response missing required fields is refused."""
    with pytest.raises(ContractViolation, match="'message' is a required property"):
        neon_spec.check_response("GET", "/projects/x", status=404, body={"code": ""})
    with pytest.raises(ContractViolation, match=r"POST /projects"):
        neon_spec.check_response("POST", "/projects", status=201, body={"project": {"id": "x"}})
    with pytest.raises(ContractViolation):
        neon_spec.check_request("GET", "/consumption_history/v2/projects", query={"org_id": "o"})


async def test_the_start_up_checks_answer_as_the_spec_says(checked: CheckedClients) -> None:
    auth = (await checked.api.get("/auth")).json()
    organizations = (await checked.api.get("/users/me/organizations")).json()["organizations"]
    # An organisation key of the emulator's one organisation: what tenantdb recommends.
    assert auth["auth_method"] == "api_key_org"
    assert [org["id"] for org in organizations] == [checked.neon.org_id]
    await checked.raw.get("/auth", headers={"Authorization": "Bearer wrong"})  # 401
    assert checked.statuses("getAuthDetails") == {200, 401}
    assert checked.statuses("getCurrentUserOrganizations") == {200}


async def test_several_organisations_answer_as_the_spec_says(checked: CheckedClients) -> None:
    """Each organisation key sees its own organisation; the transfer endpoint's answers."""
    api, raw, neon = checked.api, checked.raw, checked.neon
    other = neon.add_organization("org-second", max_projects=1)
    neon.options.account_key = "account-key"
    second = {"Authorization": f"Bearer {other.api_key}"}
    account = {"Authorization": "Bearer account-key"}
    organizations = (await api.get("/users/me/organizations", headers=second)).json()["organizations"]
    assert [org["id"] for org in organizations] == ["org-second"]
    reached = (await api.get("/users/me/organizations", headers=account)).json()["organizations"]
    assert sorted(org["id"] for org in reached) == sorted([neon.org_id, "org-second"])
    moved, kept = (await _create(api, name="moved")), (await _create(api, name="kept"))
    path = f"/organizations/{neon.org_id}/projects/transfer"
    both = [moved["project"]["id"], kept["project"]["id"]]
    # An organisation key reaches its own organisation only: 404 for the destination.
    await api.post(path, json={"destination_org_id": "org-second", "project_ids": both[:1]})  # 404
    # Two projects into an organisation limited to one: 406 naming projects_count.
    refused = await api.post(
        path, json={"destination_org_id": "org-second", "project_ids": both}, headers=account
    )
    assert refused.status_code == 406
    assert refused.json()["limits"][0]["name"] == "projects_count"
    ok = await api.post(
        path, json={"destination_org_id": "org-second", "project_ids": both[:1]}, headers=account
    )
    assert ok.status_code == 200
    await raw.post(path, json={"destination_org_id": "org-second", "project_ids": []}, headers=account)  # 400
    assert checked.statuses("transferProjectsFromOrgToOrg") == {200, 400, 404, 406}
    assert [p["id"] for p in neon.projects("org-second")] == both[:1]
    assert (await api.get(f"/projects/{both[0]}", headers=second)).json()["project"]["org_id"] == "org-second"
    assert (await api.get(f"/projects/{both[0]}")).status_code == 404  # the first key no longer sees it

"""The Neon client against the official Neon API spec.

Every request each client method sends is captured at the transport and validated against
the spec (method, path, path parameters, query and body); every answer the client is fed is
validated against the spec's response schema too, so the models are proven to read what Neon
documents. Where the spec gives an example answer, the client is fed that example.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tenantdb.neon import NeonClient, Operation, Timing
from tenantdb.neon import client as neon_client
from tenantdb.neon.session import Route
from tests.contract.spec import NeonSpec, load_spec
from tests.neon import samples
from tests.neon.helpers import API_KEY, FakeTime

NEON_API = "https://console.neon.tech/api/v2"  # the spec's server


@pytest.fixture(scope="module")
def spec() -> NeonSpec:
    return load_spec()


Answer = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """Checks each request against the spec, answers it, and checks the answer too."""

    def __init__(self, spec: NeonSpec) -> None:
        self.spec = spec
        self.answers: dict[tuple[str, str], Answer] = {}
        self.seen: list[tuple[str, str]] = []
        self.bodies: list[Any] = []  # each request's JSON body (None without one)

    def on(self, method: str, path: str, answer: Answer | dict[str, Any], status: int = 200) -> None:
        if isinstance(answer, dict):
            body = answer
            self.answers[method, path] = lambda _request: httpx.Response(status, json=body)
        else:
            self.answers[method, path] = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        query = list(request.url.params.multi_items())
        path = request.url.path
        body = json.loads(request.content) if request.content else None
        self.bodies.append(body)
        self.spec.check_request(request.method, path, query=query, body=body, headers=dict(request.headers))
        api_path = path.removeprefix("/api/v2")
        self.seen.append((request.method, api_path))
        response = self.answers[request.method, api_path](request)
        self.spec.check_response(
            request.method, path, query=query, status=response.status_code, body=response.content
        )
        return response


@pytest.fixture
def recorder(spec: NeonSpec) -> Recorder:
    return Recorder(spec)


@pytest.fixture
async def neon(recorder: Recorder) -> AsyncIterator[NeonClient]:
    fake = FakeTime()
    async with NeonClient(
        base_url=NEON_API,
        api_key=API_KEY,
        org_id="org-test-1",
        transport=httpx.MockTransport(recorder),
        timing=Timing(clock=fake.clock, sleep=fake.sleep),
    ) as client:
        yield client


def _example(spec: NeonSpec, path: str, method: str, status: str = "200") -> dict[str, Any]:
    """The example answer the spec gives for an operation."""
    example: dict[str, Any] = spec.document["paths"][path][method]["responses"][status]["content"][
        "application/json"
    ]["example"]
    return example


PID = samples.PROJECT_ID
EID = samples.ENDPOINT_ID


async def test_validate(neon: NeonClient, recorder: Recorder) -> None:
    recorder.on("GET", "/auth", {"account_id": "u-1", "auth_method": "api_key_user"})
    recorder.on(
        "GET",
        "/users/me/organizations",
        {
            "organizations": [
                {
                    "id": "org-test-1",
                    "name": "Test",
                    "handle": "test",
                    "plan": "scale",
                    "managed_by": "console",
                    "created_at": samples.NOW,
                    "updated_at": samples.NOW,
                }
            ]
        },
    )
    check = await neon.validate()
    assert check.org_id == "org-test-1"
    assert check.personal_key
    assert recorder.seen == [("GET", "/auth"), ("GET", "/users/me/organizations")]


@pytest.mark.parametrize("role_name", ["appdb_owner", None])
async def test_create_project(neon: NeonClient, recorder: Recorder, role_name: str | None) -> None:
    recorder.on("POST", "/projects", samples.created_project(), status=201)
    created = await neon.create_project(
        name="tenantdb-ws-abc",
        region_id="aws-us-east-2",
        pg_version=17,
        database_name="appdb",
        role_name=role_name,
        autoscaling_min_cu=0.25,
        autoscaling_max_cu=2.0,
        suspend_timeout_seconds=300,
    )
    assert created.project.id == PID
    assert created.connection.database == "appdb"


async def test_find_projects_with_the_specs_example_and_a_cursor(
    neon: NeonClient, recorder: Recorder, spec: NeonSpec
) -> None:
    example = _example(spec, "/projects", "get")
    full_page = samples.projects_page([samples.project(f"p-{i}") for i in range(400)], cursor="c1")

    def pages(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=example if "cursor" in request.url.params else full_page)

    recorder.on("GET", "/projects", pages)
    found = await neon.find_projects(search="tenantdb-ws-abc")
    assert [p.id for p in found[-2:]] == ["shiny-wind-028834", "winter-boat-259881"]


async def test_list_projects_asks_for_every_project_of_the_organisation_page_by_page(
    neon: NeonClient, recorder: Recorder, spec: NeonSpec
) -> None:
    example = _example(spec, "/projects", "get")
    full_page = samples.projects_page([samples.project(f"p-{i}") for i in range(400)], cursor="c1")
    queries: list[dict[str, str]] = []

    def pages(request: httpx.Request) -> httpx.Response:
        queries.append(dict(request.url.params))
        return httpx.Response(200, json=example if "cursor" in request.url.params else full_page)

    recorder.on("GET", "/projects", pages)
    found = await neon.list_projects()
    assert len(found) == 400 + len(example["projects"])
    assert [set(q) for q in queries] == [{"limit", "org_id"}, {"limit", "org_id", "cursor"}]  # no search


async def test_get_project_reads_the_specs_example(
    neon: NeonClient, recorder: Recorder, spec: NeonSpec
) -> None:
    example = _example(spec, "/projects/{project_id}", "get")
    recorder.on("GET", f"/projects/{PID}", example)
    project = await neon.get_project(PID)
    assert (project.id, project.region_id, project.pg_version) == ("shiny-wind-028834", "aws-us-east-2", 15)


async def test_delete_project(neon: NeonClient, recorder: Recorder, spec: NeonSpec) -> None:
    recorder.on("DELETE", f"/projects/{PID}", _example(spec, "/projects/{project_id}", "delete"))
    assert await neon.delete_project(PID) is True


async def test_set_compute_quota(neon: NeonClient, recorder: Recorder, spec: NeonSpec) -> None:
    recorder.on("PATCH", f"/projects/{PID}", _example(spec, "/projects/{project_id}", "patch"))
    await neon.set_compute_quota(PID, 340_000)
    with pytest.raises(ValueError, match="negative"):
        await neon.set_compute_quota(PID, -1)


async def test_create_project_with_a_tiers_history_and_quotas(neon: NeonClient, recorder: Recorder) -> None:
    recorder.on("POST", "/projects", samples.created_project(), status=201)
    await neon.create_project(
        name="tenantdb-ws-abc",
        region_id="aws-us-east-2",
        pg_version=17,
        database_name="appdb",
        role_name=None,
        autoscaling_min_cu=0.25,
        autoscaling_max_cu=2.0,
        suspend_timeout_seconds=300,
        history_retention_seconds=604800,
        quotas={"logical_size_bytes": 10 * 1024**3},
    )
    sent = recorder.bodies[-1]["project"]
    assert sent["history_retention_seconds"] == 604800
    assert sent["settings"] == {"quota": {"logical_size_bytes": 10 * 1024**3}}


async def test_update_project_settings(neon: NeonClient, recorder: Recorder, spec: NeonSpec) -> None:
    recorder.on("PATCH", f"/projects/{PID}", _example(spec, "/projects/{project_id}", "patch"))
    await neon.update_project_settings(PID, history_retention_seconds=86400, quotas={"logical_size_bytes": 0})
    sent = recorder.bodies[-1]["project"]
    assert sent == {"history_retention_seconds": 86400, "settings": {"quota": {"logical_size_bytes": 0}}}
    with pytest.raises(ValueError, match="needs a retention or a quota"):
        await neon.update_project_settings(PID)
    with pytest.raises(ValueError, match="negative"):
        await neon.update_project_settings(PID, quotas={"logical_size_bytes": -1})


async def test_recover_project_and_list_the_recoverable(
    neon: NeonClient, recorder: Recorder, spec: NeonSpec
) -> None:
    project = _example(spec, "/projects/{project_id}", "get")["project"]
    recorder.on("POST", f"/projects/{PID}/recover", {"project": project, "branches": []})
    recovered = await neon.recover_project(PID)
    assert recovered.id == project["id"]
    recorder.on("GET", "/projects", {"projects": [], "applications": {}, "integrations": {}})
    assert await neon.find_projects(search="tenantdb-ws-abc", recoverable=True) == []


async def test_delete_of_a_missing_project(neon: NeonClient, recorder: Recorder) -> None:
    recorder.on("DELETE", f"/projects/{PID}", {"code": "", "message": "project not found"}, status=404)
    assert await neon.delete_project(PID) is False


async def test_list_endpoints(neon: NeonClient, recorder: Recorder, spec: NeonSpec) -> None:
    one = _example(spec, "/projects/{project_id}/endpoints/{endpoint_id}", "get")["endpoint"]
    recorder.on("GET", f"/projects/{PID}/endpoints", {"endpoints": [one, samples.endpoint()]})
    endpoints = await neon.list_endpoints(PID)
    assert [e.id for e in endpoints] == ["ep-little-smoke-851426", EID]


@pytest.mark.parametrize(
    "changes",
    [
        {"autoscaling_min_cu": 0.5, "autoscaling_max_cu": 4.0},
        {"suspend_timeout_seconds": -1},
        {"disabled": True},
        {"disabled": False, "suspend_timeout_seconds": 600},
    ],
)
async def test_update_endpoint(
    neon: NeonClient, recorder: Recorder, spec: NeonSpec, changes: dict[str, Any]
) -> None:
    example = _example(spec, "/projects/{project_id}/endpoints/{endpoint_id}", "patch")
    recorder.on("PATCH", f"/projects/{PID}/endpoints/{EID}", example)
    operations = await neon.update_endpoint(PID, EID, **changes)
    assert [o.action for o in operations] == ["apply_config", "suspend_compute"]


async def test_get_operation_and_wait(neon: NeonClient, recorder: Recorder, spec: NeonSpec) -> None:
    example = _example(spec, "/projects/{project_id}/operations/{operation_id}", "get")
    recorder.on("GET", f"/projects/{PID}/operations/{samples.OP_TIMELINE}", example)
    assert (await neon.get_operation(PID, samples.OP_TIMELINE)).status == "finished"
    running = Operation.model_validate(samples.operation(status="running"))
    await neon.wait_for_operations(PID, [running])


@pytest.mark.parametrize("pooled", [False, True])
async def test_get_connection_uri(neon: NeonClient, recorder: Recorder, pooled: bool) -> None:
    recorder.on("GET", f"/projects/{PID}/connection_uri", {"uri": samples.connection()["connection_uri"]})
    assert await neon.get_connection_uri(PID, database_name="appdb", role_name="appdb_owner", pooled=pooled)


BID = samples.BRANCH_ID
BRANCH = "/projects/{project_id}/branches/{branch_id}"
ROLE = BRANCH + "/roles/{role_name}"


async def test_rename_project(neon: NeonClient, recorder: Recorder, spec: NeonSpec) -> None:
    recorder.on("PATCH", f"/projects/{PID}", _example(spec, "/projects/{project_id}", "patch"))
    renamed = await neon.rename_project(PID, "tenantdb-ws-abc")
    assert renamed.id == "shiny-wind-028834"  # the example's
    with pytest.raises(ValueError, match="1 to 256"):
        await neon.rename_project(PID, "")


async def test_list_branches_roles_and_databases(
    neon: NeonClient, recorder: Recorder, spec: NeonSpec
) -> None:
    recorder.on("GET", f"/projects/{PID}/branches", _example(spec, "/projects/{project_id}/branches", "get"))
    branches = await neon.list_branches(PID)
    # (The example marks both branches default; a project has one default branch.)
    assert [b.id for b in branches][:2] == ["br-aged-salad-637688", "br-sweet-breeze-497520"]
    assert branches[0].default
    recorder.on("GET", f"/projects/{PID}/branches/{BID}/roles", _example(spec, BRANCH + "/roles", "get"))
    assert [r.name for r in await neon.list_roles(PID, BID)] == ["casey", "thomas"]
    recorder.on(
        "GET", f"/projects/{PID}/branches/{BID}/databases", _example(spec, BRANCH + "/databases", "get")
    )
    assert [(d.name, d.owner_name) for d in await neon.list_databases(PID, BID)] == [
        ("main", "casey"),
        ("mydb", "casey"),
    ]


async def test_reveal_password(neon: NeonClient, recorder: Recorder, spec: NeonSpec) -> None:
    path = f"/projects/{PID}/branches/{BID}/roles/app user/reveal_password"  # decoded: sent as app%20user
    recorder.on("GET", path, _example(spec, ROLE + "/reveal_password", "get"))
    password = await neon.reveal_password(PID, BID, "app user")
    assert password is not None
    assert password.get_secret_value() == "mypass"  # the example's
    recorder.on("GET", path, {"code": "", "message": "storing passwords is disabled"}, status=412)
    assert await neon.reveal_password(PID, BID, "app user") is None


async def test_reset_password(neon: NeonClient, recorder: Recorder, spec: NeonSpec) -> None:
    example = _example(spec, ROLE + "/reset_password", "post")
    recorder.on("POST", f"/projects/{PID}/branches/{BID}/roles/sally/reset_password", example)
    reset = await neon.reset_password(PID, BID, "sally")
    assert reset.role_name == "sally"
    assert reset.password.get_secret_value() == "ClfD0aVuK3eK"  # the example's
    assert [op.action for op in reset.operations] == ["apply_config", "suspend_compute"]


async def test_consumption(neon: NeonClient, recorder: Recorder) -> None:
    ids = [f"proj-{i:03d}" for i in range(130)]

    def answer(request: httpx.Request) -> httpx.Response:
        asked = request.url.params.get_list("project_ids")
        cursor = "next" if len(asked) == 100 and "cursor" not in request.url.params else None
        return httpx.Response(200, json=samples.consumption(*(asked if cursor else []), cursor=cursor))

    recorder.on("GET", "/consumption_history/v2/projects", answer)
    result = await neon.consumption(
        project_ids=ids,
        start=datetime(2026, 11, 1, tzinfo=UTC),
        end=datetime(2026, 11, 20, tzinfo=UTC),
        granularity="daily",
    )
    assert len(result) == 100
    assert len(recorder.seen) == 2  # 100 ids, all answered on one page (its cursor not followed), then 30


def test_the_samples_the_unit_tests_use_are_valid_answers(spec: NeonSpec) -> None:
    """The answers in tests/neon/samples.py are what Neon may send: checked, not assumed."""
    consumption_query = [
        ("from", "2026-11-01T00:00:00Z"),
        ("to", "2026-11-02T00:00:00Z"),
        ("granularity", "daily"),
        ("org_id", "org-1"),
        ("metrics", "compute_unit_seconds"),
    ]
    spec.check_response("POST", "/projects", status=201, body=samples.created_project())
    spec.check_response(
        "GET", "/projects", status=200, body=samples.projects_page([samples.project()], cursor="c")
    )
    spec.check_response("GET", f"/projects/{PID}", status=200, body={"project": samples.project()})
    spec.check_response(
        "GET", f"/projects/{PID}/endpoints", status=200, body={"endpoints": [samples.endpoint(disabled=True)]}
    )
    spec.check_response(
        "GET",
        f"/projects/{PID}/operations/{samples.OP_TIMELINE}",
        status=200,
        body={"operation": samples.operation(status="failed", error="boom")},
    )
    spec.check_response(
        "GET",
        "/consumption_history/v2/projects",
        query=consumption_query,
        status=200,
        body=samples.consumption("p-1", cursor="c"),
    )


def test_every_route_the_client_knows_is_in_the_spec(spec: NeonSpec) -> None:
    ids = {
        "project_id": PID,
        "endpoint_id": EID,
        "operation_id": samples.OP_TIMELINE,
        "branch_id": BID,
        "role_name": "appdb_owner",
    }
    routes = [value for value in vars(neon_client).values() if isinstance(value, Route)]
    operations = {spec.operation_of(route.method, route.path(ids)) for route in routes}
    assert operations == {
        "getAuthDetails",
        "getCurrentUserOrganizations",
        "listProjects",
        "createProject",
        "getProject",
        "deleteProject",
        "updateProject",
        "recoverProject",
        "listProjectEndpoints",
        "updateProjectEndpoint",
        "getProjectOperation",
        "getConnectionURI",
        "getConsumptionHistoryPerProjectV2",
        "listProjectBranches",
        "listProjectBranchRoles",
        "listProjectBranchDatabases",
        "getProjectBranchRolePassword",
        "resetProjectBranchRolePassword",
    }

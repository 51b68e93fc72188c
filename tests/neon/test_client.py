"""Each NeonClient method: the request it sends and what it makes of Neon's answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from tenantdb.config import Settings
from tenantdb.metrics import Metrics
from tenantdb.neon import (
    NeonAuthError,
    NeonClient,
    NeonNotFoundError,
    NeonOperationFailedError,
    NeonTransientError,
    Operation,
)
from tests.neon import samples
from tests.neon.helpers import API_KEY, FakeTime, Script, answer, count, create_args, error


def _op(status: str, operation_id: str = samples.OP_TIMELINE, **extra: str) -> Operation:
    return Operation.model_validate(samples.operation(operation_id, status=status, **extra))


# --- create -----------------------------------------------------------------------------------------


async def test_create_project_sends_one_request_with_the_whole_project(
    client: NeonClient, script: Script
) -> None:
    script.then(answer(201, samples.created_project()))
    await client.create_project(**create_args())
    (request,) = script.requests
    assert (request.method, request.url.path) == ("POST", "/api/v2/projects")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert json.loads(request.content) == {
        "project": {
            "name": "tenantdb-ws-abc",
            "region_id": "aws-us-east-2",
            "pg_version": 17,
            "org_id": "org-test-1",
            "branch": {"database_name": "appdb", "role_name": "appdb_owner"},
            "default_endpoint_settings": {
                "autoscaling_limit_min_cu": 0.25,
                "autoscaling_limit_max_cu": 2.0,
                "suspend_timeout_seconds": 300,
            },
        }
    }


async def test_create_project_without_a_role_lets_neon_name_it(client: NeonClient, script: Script) -> None:
    script.then(answer(201, samples.created_project()))
    await client.create_project(**create_args(role_name=None))
    assert "role_name" not in script.bodies[0]["project"]["branch"]


async def test_create_project_returns_everything_a_tenant_database_needs(
    client: NeonClient, script: Script
) -> None:
    script.then(answer(201, samples.created_project()))
    created = await client.create_project(**create_args())
    assert created.project.id == samples.PROJECT_ID
    assert created.project.name == "tenantdb-ws-abc"
    assert created.branch_id == samples.BRANCH_ID
    assert [e.id for e in created.endpoints] == [samples.ENDPOINT_ID]
    assert [(o.action, o.status) for o in created.operations] == [
        ("create_timeline", "running"),
        ("start_compute", "scheduling"),
    ]
    connection = created.connection
    assert connection.uri.get_secret_value() == samples.connection()["connection_uri"]
    assert (connection.database, connection.role, connection.port) == ("appdb", "appdb_owner", 5432)
    assert connection.password.get_secret_value() == samples.PASSWORD
    assert connection.pooler_host == f"{samples.ENDPOINT_ID}-pooler.us-east-2.aws.neon.tech"


async def test_the_pooled_uri_uses_the_pooler_host_and_encodes_the_credentials(
    client: NeonClient, script: Script
) -> None:
    script.then(answer(201, samples.created_project(role="app user", password="p@ss:/w?rd#1")))
    pooled = (await client.create_project(**create_args(role_name="app user"))).connection.pooled_uri
    parts = urlsplit(pooled.get_secret_value())
    assert parts.scheme == "postgresql"
    assert parts.path == "/appdb"
    assert parts.hostname == f"{samples.ENDPOINT_ID}-pooler.us-east-2.aws.neon.tech"
    assert parts.query == "sslmode=require&channel_binding=require"
    assert parts.username == "app%20user"
    assert parts.password == "p%40ss%3A%2Fw%3Frd%231"
    assert (unquote(parts.username), unquote(parts.password)) == ("app user", "p@ss:/w?rd#1")


async def test_create_project_picks_the_uri_of_the_database_asked_for(
    client: NeonClient, script: Script
) -> None:
    body = samples.created_project()
    body["connection_uris"].insert(0, samples.connection(database="neondb", role="neondb_owner"))
    script.then(answer(201, body))
    created = await client.create_project(**create_args())
    assert (created.connection.database, created.connection.role) == ("appdb", "appdb_owner")


async def test_an_unreadable_create_answer_is_ambiguous(client: NeonClient, script: Script) -> None:
    body = samples.created_project()
    del body["connection_uris"]
    script.then(answer(201, body))
    with pytest.raises(NeonTransientError) as caught:
        await client.create_project(**create_args())
    assert caught.value.ambiguous
    assert caught.value.code == "UNREADABLE_ANSWER"


# --- find, get, delete ------------------------------------------------------------------------------


async def test_find_projects_searches_the_organisation_and_follows_cursors(
    client: NeonClient, script: Script
) -> None:
    first = [samples.project(f"p-{i}", name=f"tenantdb-{i}") for i in range(400)]
    script.then(
        answer(200, {"projects": first, "pagination": {"cursor": "c1"}}),
        answer(200, {"projects": [samples.project("p-last")], "pagination": {"cursor": "c2"}}),
    )
    found = await client.find_projects(search="tenantdb")
    assert len(found) == 401
    assert found[-1].id == "p-last"
    queries = [dict(r.url.params) for r in script.requests]
    assert queries == [
        {"search": "tenantdb", "limit": "400", "org_id": "org-test-1"},
        {"search": "tenantdb", "limit": "400", "org_id": "org-test-1", "cursor": "c1"},
    ]


async def test_find_projects_stops_when_a_cursor_comes_back(client: NeonClient, script: Script) -> None:
    full = {"projects": [samples.project(f"p-{i}") for i in range(400)], "pagination": {"cursor": "same"}}
    script.then(answer(200, full))
    assert len(await client.find_projects(search="p-")) == 800
    assert len(script.requests) == 2


async def test_an_incomplete_project_list_is_not_an_empty_one(client: NeonClient, script: Script) -> None:
    script.then(answer(200, {"projects": [], "unavailable_project_ids": ["p-slow"]}))
    with pytest.raises(NeonTransientError, match="INCOMPLETE_ANSWER"):
        await client.find_projects(search="tenantdb-ws-abc")


async def test_get_project_of_a_missing_project_raises_not_found(client: NeonClient, script: Script) -> None:
    script.then(error(404, "", "project not found"))
    with pytest.raises(NeonNotFoundError):
        await client.get_project("gone-project-1")


@pytest.mark.parametrize(
    ("answers", "deleted"),
    [
        ([answer(200, {"project": samples.project()})], True),
        ([error(404, "", "not found")], False),
        ([error(423, "", "locked"), answer(200, {"project": samples.project()})], True),
    ],
)
async def test_delete_project_says_whether_it_deleted(
    client: NeonClient, script: Script, answers: list[httpx.Response], deleted: bool
) -> None:
    script.then(*answers)
    assert await client.delete_project(samples.PROJECT_ID) is deleted
    assert {(r.method, r.url.path) for r in script.requests} == {
        ("DELETE", f"/api/v2/projects/{samples.PROJECT_ID}")
    }


async def test_ids_that_could_change_the_path_are_refused(client: NeonClient, script: Script) -> None:
    for bad in ("../api_keys", "a/b", "", "p?x=1"):
        with pytest.raises(ValueError, match="not a Neon id"):
            await client.get_project(bad)
    assert script.requests == []


async def test_role_names_are_escaped_in_the_path_and_never_climb_it(
    client: NeonClient, script: Script
) -> None:
    script.then(answer(200, {"password": samples.PASSWORD}))
    await client.reveal_password(samples.PROJECT_ID, samples.BRANCH_ID, "../a b?c")
    (request,) = script.requests
    assert request.url.raw_path.decode().endswith("/roles/..%2Fa%20b%3Fc/reveal_password")
    for bad in ("", ".", ".."):
        with pytest.raises(ValueError, match="not a usable name"):
            await client.reset_password(samples.PROJECT_ID, samples.BRANCH_ID, bad)
    assert len(script.requests) == 1


# --- endpoints and operations -------------------------------------------------------------------


async def test_list_endpoints(client: NeonClient, script: Script) -> None:
    script.then(answer(200, {"endpoints": [samples.endpoint(disabled=True)]}))
    (endpoint,) = await client.list_endpoints(samples.PROJECT_ID)
    assert (endpoint.id, endpoint.branch_id, endpoint.type, endpoint.disabled) == (
        samples.ENDPOINT_ID,
        samples.BRANCH_ID,
        "read_write",
        True,
    )
    assert (endpoint.autoscaling_limit_min_cu, endpoint.autoscaling_limit_max_cu) == (0.25, 2.0)
    assert (endpoint.suspend_timeout_seconds, endpoint.current_state) == (300, "idle")
    assert script.requests[0].url.path == f"/api/v2/projects/{samples.PROJECT_ID}/endpoints"


async def test_update_endpoint_sends_only_what_changes(client: NeonClient, script: Script) -> None:
    script.then(
        answer(
            200,
            {
                "endpoint": samples.endpoint(disabled=True),
                "operations": [samples.operation(action="suspend_compute")],
            },
        )
    )
    operations = await client.update_endpoint(samples.PROJECT_ID, samples.ENDPOINT_ID, disabled=True)
    assert [o.action for o in operations] == ["suspend_compute"]
    request = script.requests[0]
    assert request.method == "PATCH"
    assert request.url.path == f"/api/v2/projects/{samples.PROJECT_ID}/endpoints/{samples.ENDPOINT_ID}"
    assert json.loads(request.content) == {"endpoint": {"disabled": True}}


async def test_update_endpoint_with_nothing_to_change_is_a_mistake(
    client: NeonClient, script: Script
) -> None:
    with pytest.raises(ValueError, match="at least one"):
        await client.update_endpoint(samples.PROJECT_ID, samples.ENDPOINT_ID)
    assert script.requests == []


async def test_waiting_for_finished_operations_makes_no_call(client: NeonClient, script: Script) -> None:
    await client.wait_for_operations(
        samples.PROJECT_ID, [_op("finished"), _op("skipped", samples.OP_COMPUTE)]
    )
    assert script.requests == []


def _timeline(status: str) -> httpx.Response:
    return answer(200, {"operation": samples.operation(status=status)})


def _compute(status: str) -> httpx.Response:
    operation = samples.operation(samples.OP_COMPUTE, action="start_compute", status=status)
    return answer(200, {"operation": operation})


async def test_a_finished_last_operation_vouches_for_the_earlier_ones(
    client: NeonClient, script: Script, fake_time: FakeTime
) -> None:
    script.then(_compute("finished"))
    await client.wait_for_operations(
        samples.PROJECT_ID, [_op("running"), _op("scheduling", samples.OP_COMPUTE)]
    )
    assert [r.url.path.rsplit("/", 1)[-1] for r in script.requests] == [samples.OP_COMPUTE]  # one call
    assert fake_time.sleeps == pytest.approx([0.5])


async def test_while_the_last_runs_the_first_unfinished_is_polled_with_growing_delays(
    client: NeonClient, script: Script, fake_time: FakeTime
) -> None:
    script.then(
        _compute("scheduling"), _timeline("running"),  # neither done yet
        _compute("scheduling"), _timeline("finished"), _compute("running"),  # the first is done
        _compute("finished"),  # the last is done: nothing else to ask
    )  # fmt: skip
    await client.wait_for_operations(
        samples.PROJECT_ID, [_op("running"), _op("scheduling", samples.OP_COMPUTE)]
    )
    paths = [r.url.path.rsplit("/", 1)[-1] for r in script.requests]
    compute, timeline = samples.OP_COMPUTE, samples.OP_TIMELINE
    assert paths == [compute, timeline, compute, timeline, compute, compute]
    assert fake_time.sleeps == pytest.approx([0.5, 0.75, 1.125])


async def test_a_failed_last_operation_is_reported(client: NeonClient, script: Script) -> None:
    script.then(answer(200, {"operation": samples.operation(samples.OP_COMPUTE, status="cancelled")}))
    with pytest.raises(NeonOperationFailedError) as caught:
        await client.wait_for_operations(
            samples.PROJECT_ID, [_op("running"), _op("scheduling", samples.OP_COMPUTE)]
        )
    assert caught.value.operation_id == samples.OP_COMPUTE


async def test_wait_raises_when_an_operation_fails(client: NeonClient, script: Script) -> None:
    script.then(answer(200, {"operation": samples.operation(status="failed", error="compute did not start")}))
    with pytest.raises(
        NeonOperationFailedError, match=r"create_timeline \(.*\) of project .* failed: compute did not start"
    ):
        await client.wait_for_operations(samples.PROJECT_ID, [_op("running")])


async def test_wait_raises_for_an_operation_already_cancelled(client: NeonClient, script: Script) -> None:
    with pytest.raises(NeonOperationFailedError) as caught:
        await client.wait_for_operations(
            samples.PROJECT_ID, [_op("finished"), _op("cancelled", samples.OP_COMPUTE)]
        )
    assert caught.value.operation_id == samples.OP_COMPUTE
    assert script.requests == []


async def test_wait_gives_up_after_its_timeout(
    client: NeonClient, script: Script, fake_time: FakeTime
) -> None:
    script.then(answer(200, {"operation": samples.operation(status="running")}))
    started = fake_time.now
    with pytest.raises(NeonTransientError, match="OPERATIONS_PENDING"):
        await client.wait_for_operations(samples.PROJECT_ID, [_op("running")], timeout=20.0)
    assert fake_time.now - started == pytest.approx(20.0)
    assert 5 <= len(script.requests) <= 10  # backed off to 5 s between polls


# --- connection URI ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pooled", "query"),
    [
        (False, {"database_name": "appdb", "role_name": "appdb_owner"}),
        (True, {"database_name": "appdb", "role_name": "appdb_owner", "pooled": "true"}),
    ],
)
async def test_get_connection_uri(
    client: NeonClient, script: Script, pooled: bool, query: dict[str, str]
) -> None:
    uri = samples.connection()["connection_uri"]
    script.then(answer(200, {"uri": uri}))
    got = await client.get_connection_uri(
        samples.PROJECT_ID, database_name="appdb", role_name="appdb_owner", pooled=pooled
    )
    assert got == uri
    assert dict(script.requests[0].url.params) == query


# --- consumption -----------------------------------------------------------------------------------


async def test_consumption_asks_in_batches_of_one_hundred_and_totals_each_project(
    client: NeonClient, script: Script
) -> None:
    ids = [f"proj-{i:03d}" for i in range(150)]

    def reply(request: httpx.Request) -> httpx.Response:
        return answer(200, samples.consumption(*request.url.params.get_list("project_ids")))

    script.then(reply)
    result = await client.consumption(
        project_ids=ids, start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 20, 12, tzinfo=UTC)
    )
    batches = [r.url.params.get_list("project_ids") for r in script.requests]
    assert batches == [ids[:100], ids[100:]]
    params = script.requests[0].url.params
    assert params["from"] == "2026-11-01T00:00:00Z"
    assert params["to"] == "2026-11-20T12:00:00Z"
    assert params["org_id"] == "org-test-1"
    assert params["granularity"] == "monthly"
    assert params.get_list("metrics") == [
        "compute_unit_seconds",
        "root_branch_bytes_month",
        "child_branch_bytes_month",
    ]
    assert len(result) == 150
    assert result[0].project_id == "proj-000"
    assert result[0].metrics == {
        "compute_unit_seconds": 7200,
        "root_branch_bytes_month": 2000,
        "child_branch_bytes_month": 0,
    }
    assert [t.start.day for t in result[0].timeframes] == [1, 2]


async def test_consumption_follows_cursors_until_every_project_is_answered(
    client: NeonClient, script: Script
) -> None:
    ids = [f"proj-{i:03d}" for i in range(100)]
    # A full page that still leaves one project out (one project split over two entries).
    first = samples.consumption(ids[0], *ids[:99], cursor="c2")
    script.then(answer(200, first), answer(200, samples.consumption(ids[99])))
    result = await client.consumption(
        project_ids=ids, start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 2, tzinfo=UTC)
    )
    assert [r.url.params.get("cursor") for r in script.requests] == [None, "c2"]
    assert {p.project_id for p in result} == set(ids)


async def test_consumption_does_not_follow_a_cursor_once_every_project_is_answered(
    client: NeonClient, script: Script
) -> None:
    ids = [f"proj-{i:03d}" for i in range(100)]
    script.then(answer(200, samples.consumption(*ids, cursor="c2")))
    await client.consumption(
        project_ids=ids, start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 2, tzinfo=UTC)
    )
    assert len(script.requests) == 1  # the cursor would only lead to an empty page


async def test_consumption_stops_at_a_short_page_whatever_the_cursor(
    client: NeonClient, script: Script
) -> None:
    ids = [f"proj-{i:03d}" for i in range(100)]
    script.then(answer(200, samples.consumption(*ids[:60], cursor="next")))
    await client.consumption(
        project_ids=ids,
        start=datetime(2026, 11, 1, tzinfo=UTC),
        end=datetime(2026, 11, 2, tzinfo=UTC),
        granularity="daily",
    )
    assert len(script.requests) == 1


async def test_consumption_refuses_naive_times_and_unknown_granularities(client: NeonClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.consumption(project_ids=["p-1"], start=datetime(2026, 11, 1), end=datetime.now(UTC))
    with pytest.raises(ValueError, match="granularity"):
        await client.consumption(
            project_ids=["p-1"], start=datetime.now(UTC), end=datetime.now(UTC), granularity="weekly"
        )


async def test_consumption_of_no_project_asks_nothing(client: NeonClient, script: Script) -> None:
    assert await client.consumption(project_ids=[], start=datetime.now(UTC), end=datetime.now(UTC)) == []
    assert script.requests == []


# --- validate -----------------------------------------------------------------------------------------


def _client(script: Script, fake_time: FakeTime, org_id: str = "") -> NeonClient:
    from tenantdb.neon import Timing

    return NeonClient(
        base_url="https://neon.test/api/v2",
        api_key=API_KEY,
        org_id=org_id,
        transport=httpx.MockTransport(script),
        timing=Timing(clock=fake_time.clock, sleep=fake_time.sleep),
    )


ORGS = {
    "organizations": [
        {
            "id": "org-a-1",
            "name": "A",
            "handle": "a",
            "plan": "scale",
            "managed_by": "console",
            "created_at": samples.NOW,
            "updated_at": samples.NOW,
        }
    ]
}


async def test_validate_an_organisation_key_learns_its_organisation(
    script: Script, fake_time: FakeTime
) -> None:
    script.then(answer(200, {"account_id": "org-a-1", "auth_method": "api_key_org"}), answer(200, ORGS))
    async with _client(script, fake_time) as neon:
        check = await neon.validate()
        assert (check.org_id, check.personal_key, neon.org_id) == ("org-a-1", False, "org-a-1")
    assert [r.url.path for r in script.requests] == ["/api/v2/auth", "/api/v2/users/me/organizations"]


async def test_validate_a_personal_key_without_org_id_says_what_to_set(
    script: Script, fake_time: FakeTime
) -> None:
    script.then(answer(200, {"account_id": "u-1", "auth_method": "api_key_user"}), answer(200, ORGS))
    async with _client(script, fake_time) as neon:
        with pytest.raises(
            NeonAuthError, match=r"personal Neon API key needs NEON_ORG_ID \(one of: org-a-1\)"
        ):
            await neon.validate()


async def test_validate_a_personal_key_with_its_org_id(script: Script, fake_time: FakeTime) -> None:
    script.then(answer(200, {"account_id": "u-1", "auth_method": "api_key_user"}), answer(200, ORGS))
    async with _client(script, fake_time, org_id="org-a-1") as neon:
        check = await neon.validate()
    assert check.personal_key
    assert check.org_id == "org-a-1"


async def test_validate_refuses_an_organisation_the_key_cannot_reach(
    script: Script, fake_time: FakeTime
) -> None:
    script.then(answer(200, {"account_id": "org-a-1", "auth_method": "api_key_org"}), answer(200, ORGS))
    async with _client(script, fake_time, org_id="org-other-2") as neon:
        with pytest.raises(
            NeonAuthError, match="NEON_ORG_ID is org-other-2, but the API key cannot act in it"
        ):
            await neon.validate()


async def test_validate_a_rejected_key(script: Script, fake_time: FakeTime) -> None:
    script.then(error(401, "", "authentication required"))
    async with _client(script, fake_time) as neon:
        with pytest.raises(NeonAuthError, match="Neon rejected the API key; check NEON_API_KEY") as caught:
            await neon.validate()
    assert caught.value.status == 401
    assert len(script.requests) == 1


async def test_consumption_without_an_org_id_learns_it_first(script: Script, fake_time: FakeTime) -> None:
    script.then(
        answer(200, {"account_id": "org-a-1", "auth_method": "api_key_org"}),
        answer(200, ORGS),
        answer(200, samples.consumption("p-1")),
    )
    async with _client(script, fake_time) as neon:
        await neon.consumption(
            project_ids=["p-1"],
            start=datetime(2026, 11, 1, tzinfo=UTC),
            end=datetime(2026, 11, 2, tzinfo=UTC),
        )
    assert script.requests[-1].url.params["org_id"] == "org-a-1"


# --- construction and metrics ------------------------------------------------------------------


def test_from_settings_takes_every_neon_setting() -> None:
    settings = Settings(
        encryption_key="0" * 64,
        neon_api_key=API_KEY,
        neon_org_id="org-s-1",
        neon_api_url="https://neon.example/api/v2",
        neon_request_timeout_seconds=7,
        neon_retry_deadline_seconds=33,
        neon_rate_limit_per_minute=300,
        neon_route_rate_limit_per_second=9,
    )
    neon = NeonClient.from_settings(settings)
    assert (neon.base_url, neon.org_id) == ("https://neon.example/api/v2", "org-s-1")
    session = neon._session
    assert session.timing.retry_deadline == 33
    assert (session.limiter.account.limit, session.limiter.per_route.limit) == (300, 9)
    assert session._http.timeout.read == 7


def test_a_client_needs_a_key() -> None:
    with pytest.raises(ValueError, match="API key is required"):
        NeonClient(base_url="https://neon.test/api/v2", api_key="")


async def test_calls_are_counted_by_route_template_never_by_id(
    client: NeonClient, script: Script, metrics: Metrics
) -> None:
    script.then(answer(200, {"project": samples.project()}))
    for project_id in ("proj-one-1", "proj-two-2"):
        await client.get_project(project_id)
    assert (
        count(metrics, "tenantdb_neon_api_calls_total", route="GET /projects/{project_id}", status="200") == 2
    )
    labels = {value for m in metrics.registry.collect() for s in m.samples for value in s.labels.values()}
    assert not any("proj-" in value for value in labels)


async def test_every_call_records_its_wait_for_the_limiter(
    client: NeonClient, script: Script, metrics: Metrics
) -> None:
    script.then(answer(200, {"project": samples.project()}))
    for _ in range(3):
        await client.get_project(samples.PROJECT_ID)
    assert count(metrics, "tenantdb_neon_rate_limiter_wait_seconds_count") == 3

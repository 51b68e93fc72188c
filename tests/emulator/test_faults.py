"""What production does to clients: bad keys, outages, 5xx answers, drops, latency, 429."""

from __future__ import annotations

import asyncio
import time

import httpx

from tenantdb.testing.neon import DROPPED_STATUS, NeonEmulator
from tests.emulator.helpers import api_client, create_project


async def test_a_missing_or_wrong_key_is_401(neon: NeonEmulator) -> None:
    async with httpx.AsyncClient(base_url=neon.base_url) as anonymous:
        missing = await anonymous.get("/projects")
    async with api_client(neon, api_key="not-the-key") as wrong:
        wrong_key = await wrong.get("/projects")
    for response in (missing, wrong_key):
        assert response.status_code == 401
        assert set(response.json()) >= {"code", "message"}


async def test_the_key_may_change_at_run_time(neon: NeonEmulator, api: httpx.AsyncClient) -> None:
    neon.options.api_key = "rotated"
    assert (await api.get("/projects")).status_code == 401
    async with api_client(neon) as rotated:
        assert (await rotated.get("/projects")).status_code == 200


async def test_an_unknown_path_is_a_json_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/no/such/path")
    assert response.status_code == 404
    assert set(response.json()) >= {"code", "message"}
    wrong_method = await api.put("/projects")
    assert wrong_method.status_code == 405
    assert "message" in wrong_method.json()


async def test_down_answers_503_to_everything_until_up(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    neon.options.down = True
    statuses = {(await api.get("/projects")).status_code, (await api.post("/projects", json={})).status_code}
    assert statuses == {503}
    neon.options.down = False
    assert (await api.get("/projects")).status_code == 200
    assert neon.projects() == []


async def test_errors_strike_at_about_the_configured_rate(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    neon.seed(7)
    neon.options.error_rate = 0.3
    statuses = [(await api.get("/projects")).status_code for _ in range(200)]
    failed = [status for status in statuses if status != 200]
    assert set(failed) <= {500, 503}
    assert 40 <= len(failed) <= 80  # 30% of 200, with room for chance
    injected = [call for call in neon.calls() if call.injected]
    assert len(injected) == len(failed)


async def test_drops_close_the_connection_without_an_answer(neon: NeonEmulator) -> None:
    neon.seed(11)
    neon.options.drop_rate = 0.25
    dropped = 0
    async with api_client(neon) as client:
        for _ in range(120):
            try:
                response = await client.get("/projects")
            except httpx.RemoteProtocolError:
                dropped += 1
            else:
                assert response.status_code == 200
    assert 15 <= dropped <= 45
    assert sum(1 for call in neon.calls() if call.status == DROPPED_STATUS) == dropped


async def test_faults_after_processing_leave_created_projects_behind(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    neon.seed(3)
    neon.options.error_rate = 1.0
    answers = [
        (await api.post("/projects", json={"project": {"name": f"lost-{n}"}})).status_code for n in range(12)
    ]
    assert set(answers) <= {500, 503}
    # The client heard only errors, yet some creates happened: it must find and adopt them.
    assert 1 <= len(neon.projects()) < 12
    neon.options.error_rate = 0.0
    found = (await api.get("/projects", params={"search": "lost-"})).json()["projects"]
    assert len(found) == len(neon.projects())


async def test_faults_before_processing_change_nothing(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    neon.options.error_rate = 1.0
    neon.options.fault_after_processing = False
    for n in range(5):
        assert (await api.post("/projects", json={"project": {"name": f"never-{n}"}})).status_code in (
            500,
            503,
        )
    assert neon.projects() == []


async def test_latency_delays_requests_and_creates_have_their_own(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    neon.options.latency_seconds = (0.05, 0.06)
    neon.options.create_latency_seconds = (0.2, 0.25)
    started = time.monotonic()
    await api.get("/projects")
    read_took = time.monotonic() - started
    started = time.monotonic()
    await create_project(api, name="slow")
    create_took = time.monotonic() - started
    assert 0.05 <= read_took < 0.2
    assert create_took >= 0.2


async def test_account_budget_per_minute_answers_429_with_retry_after(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    neon.options.rate_limit_per_minute = 5
    statuses = [(await api.get("/projects")).status_code for _ in range(5)]
    refused = await api.get("/projects/any-project-1")  # another route, same account
    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert set(refused.json()) >= {"code", "message"}


async def test_route_budget_per_second_is_per_route(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    neon.options.route_rate_limit_per_second = 3
    statuses = [(await api.get("/projects")).status_code for _ in range(4)]
    other_route = await api.get("/projects/no-such-project-1")
    assert statuses == [200, 200, 200, 429]
    assert other_route.status_code == 404  # its own budget: not refused
    limited = await api.get("/projects")
    assert limited.headers["Retry-After"] == "1"
    await asyncio.sleep(1.05)  # the window slides: the route has room again
    assert (await api.get("/projects")).status_code == 200


async def test_calls_are_recorded_with_route_templates(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    created = await create_project(api, name="traced")
    await api.get(f"/projects/{created['project']['id']}")
    routes = [(call.route, call.status) for call in neon.calls()]
    assert routes == [("POST /projects", 201), ("GET /projects/{project_id}", 200)]
    assert neon.calls()[1].path == f"/projects/{created['project']['id']}"
    neon.reset_calls()
    assert neon.calls() == []


async def test_no_faults_by_default(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    assert neon.options.error_rate == neon.options.drop_rate == 0.0
    statuses = {(await api.get("/projects")).status_code for _ in range(50)}
    assert statuses == {200}


async def test_a_route_can_be_made_to_refuse_with_a_given_status(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    created = (await api.post("/projects", json={"project": {"name": "refused"}})).json()
    neon.options.refuse = {"DELETE /projects/{project_id}": 409}
    answer = await api.delete(f"/projects/{created['project']['id']}")
    assert answer.status_code == 409
    assert answer.json()["message"]
    assert [p["name"] for p in neon.projects()] == ["refused"]
    neon.options.refuse = {}
    assert (await api.delete(f"/projects/{created['project']['id']}")).status_code == 200

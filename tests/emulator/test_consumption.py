"""GET /consumption_history/v2/projects: the usage set by tests, by hour, day or month."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import httpx
import pytest

from tenantdb.testing.neon import NeonEmulator
from tests.emulator.helpers import create_project

UTC = datetime.UTC


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _month_start(now: datetime.datetime) -> datetime.datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(now: datetime.datetime) -> datetime.datetime:
    start = _month_start(now)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def _params(neon: NeonEmulator, **extra: Any) -> dict[str, Any]:
    now = datetime.datetime.now(UTC)
    params: dict[str, Any] = {
        "org_id": neon.org_id,
        "from": _stamp(_month_start(now)),
        "to": _stamp(_next_month(now)),
        "granularity": "monthly",
        "metrics": "compute_unit_seconds,root_branch_bytes_month",
    }
    params.update(extra)
    return params


def _totals(body: dict[str, Any]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for project in body["projects"]:
        sums = totals.setdefault(project["project_id"], {})
        for period in project["periods"]:
            for frame in period["consumption"]:
                for metric in frame["metrics"]:
                    sums[metric["metric_name"]] = sums.get(metric["metric_name"], 0) + metric["value"]
    return totals


@pytest.mark.parametrize("granularity", ["hourly", "daily", "monthly"])
async def test_timeframes_add_up_to_the_usage_set(
    api: httpx.AsyncClient, neon: NeonEmulator, granularity: str
) -> None:
    created = await create_project(api, name="metered")
    project_id = created["project"]["id"]
    neon.set_usage(project_id, compute_unit_seconds=36000, root_branch_bytes_month=10**9)
    now = datetime.datetime.now(UTC)
    start = {"hourly": now - datetime.timedelta(hours=2), "daily": now - datetime.timedelta(days=1)}.get(
        granularity, _month_start(now)
    )
    response = await api.get(
        "/consumption_history/v2/projects",
        params=_params(
            neon, granularity=granularity, **{"from": _stamp(start), "to": _stamp(_next_month(now))}
        ),
    )
    assert response.status_code == 200
    body = response.json()
    assert _totals(body) == {project_id: {"compute_unit_seconds": 36000, "root_branch_bytes_month": 10**9}}
    frames = body["projects"][0]["periods"][-1]["consumption"]
    assert frames == sorted(frames, key=lambda frame: frame["timeframe_start"])
    assert frames[-1]["timeframe_start"] <= _stamp(now)  # nothing from the future


async def test_projects_page_newest_first_with_a_cursor(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    for body in await asyncio.gather(*(create_project(api, name=f"m{n}") for n in range(5))):
        neon.set_usage(body["project"]["id"], compute_unit_seconds=60)  # silent ones are left out
    newest_first = [p["id"] for p in (await api.get("/projects")).json()["projects"]]
    seen: list[str] = []
    cursor = None
    while True:
        params = _params(neon, limit="2", **({"cursor": cursor} if cursor else {}))
        body = (await api.get("/consumption_history/v2/projects", params=params)).json()
        seen += [project["project_id"] for project in body["projects"]]
        if len(body["projects"]) < 2:
            break
        cursor = body["pagination"]["cursor"]
    assert seen == newest_first


async def test_project_ids_filter_repeated_or_comma_separated(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    ids = [
        body["project"]["id"]
        for body in await asyncio.gather(*(create_project(api, name=f"f{n}") for n in range(3)))
    ]
    for project_id in ids:
        neon.set_usage(project_id, compute_unit_seconds=60)  # silent projects are left out
    repeated = [(k, v) for k, v in _params(neon).items()] + [("project_ids", ids[0]), ("project_ids", ids[2])]
    comma = _params(neon, project_ids=f"{ids[0]},{ids[2]}")
    for params in (repeated, comma):
        body = (await api.get("/consumption_history/v2/projects", params=params)).json()
        assert sorted(project["project_id"] for project in body["projects"]) == sorted([ids[0], ids[2]])


async def test_more_than_100_project_ids_is_400(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    many = ",".join(f"project-{n:08d}" for n in range(101))
    response = await api.get("/consumption_history/v2/projects", params=_params(neon, project_ids=many))
    assert response.status_code == 400
    hundred = ",".join(f"project-{n:08d}" for n in range(100))
    assert (
        await api.get("/consumption_history/v2/projects", params=_params(neon, project_ids=hundred))
    ).status_code == 200


@pytest.mark.parametrize("missing", ["org_id", "from", "to", "granularity", "metrics"])
async def test_each_required_parameter_is_required(
    api: httpx.AsyncClient, neon: NeonEmulator, missing: str
) -> None:
    params = _params(neon)
    del params[missing]
    response = await api.get("/consumption_history/v2/projects", params=params)
    assert response.status_code == 400
    assert missing in response.json()["message"]


async def test_invalid_parameters(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    now = datetime.datetime.now(UTC)
    cases = {
        400: [
            _params(neon, granularity="weekly"),
            _params(neon, metrics="compute_unit_seconds,cpu_cycles"),
            _params(neon, **{"from": "yesterday"}),
            _params(neon, **{"to": _stamp(_month_start(now) - datetime.timedelta(days=1))}),
            _params(neon, limit="101"),
            _params(neon, cursor="no-such-project-1"),
        ],
        404: [_params(neon, org_id="org-someone-else")],
        406: [
            _params(neon, granularity="hourly", **{"from": _stamp(now - datetime.timedelta(hours=200))}),
            _params(neon, granularity="daily", **{"from": _stamp(now - datetime.timedelta(days=70))}),
            _params(neon, **{"from": "2024-01-01T00:00:00Z"}),
        ],
    }
    for status, variants in cases.items():
        for params in variants:
            response = await api.get("/consumption_history/v2/projects", params=params)
            assert response.status_code == status, params
            assert set(response.json()) >= {"code", "message"}


async def test_deleted_projects_keep_their_consumption(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    created = await create_project(api, name="was-here")
    project_id = created["project"]["id"]
    neon.set_usage(project_id, compute_unit_seconds=720)
    await api.delete(f"/projects/{project_id}")
    body = (
        await api.get("/consumption_history/v2/projects", params=_params(neon, project_ids=project_id))
    ).json()
    assert _totals(body)[project_id]["compute_unit_seconds"] == 720


async def test_set_usage_rejects_unknown_metrics_projects_and_values(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    project_id = (await create_project(api, name="strict"))["project"]["id"]
    with pytest.raises(KeyError):
        neon.set_usage("no-such-project-1", compute_unit_seconds=1)
    with pytest.raises(ValueError, match="unknown metric"):
        neon.set_usage(project_id, cpu_cycles=1)
    with pytest.raises(ValueError, match="non-negative"):
        neon.set_usage(project_id, compute_unit_seconds=-1)


async def test_usage_shows_in_the_project_legacy_counters(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    project_id = (await create_project(api, name="legacy"))["project"]["id"]
    neon.set_usage(project_id, compute_unit_seconds=90, public_network_transfer_bytes=1234)
    project = (await api.get(f"/projects/{project_id}")).json()["project"]
    assert (project["compute_time_seconds"], project["data_transfer_bytes"]) == (90, 1234)


async def test_a_project_that_used_nothing_is_left_out(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    busy, idle = [
        body["project"]["id"]
        for body in await asyncio.gather(create_project(api, name="busy"), create_project(api, name="idle"))
    ]
    neon.set_usage(busy, compute_unit_seconds=3600)
    body = (
        await api.get("/consumption_history/v2/projects", params=_params(neon, project_ids=f"{busy},{idle}"))
    ).json()
    assert [project["project_id"] for project in body["projects"]] == [busy]
    names = {
        metric["metric_name"]
        for period in body["projects"][0]["periods"]
        for frame in period["consumption"]
        for metric in frame["metrics"]
    }
    assert names == {"compute_unit_seconds"}  # the metrics with no usage are left out too

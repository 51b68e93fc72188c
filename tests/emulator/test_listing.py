"""GET /projects: keyset pagination (newest first) and search by partial name or id."""

from __future__ import annotations

import asyncio

import httpx

from tests.emulator.helpers import create_project


async def _create_many(api: httpx.AsyncClient, names: list[str]) -> list[str]:
    ids = []
    for name in names:  # one after another: the order of creation is what pages follow
        ids.append((await create_project(api, name=name))["project"]["id"])
    return ids


async def test_pages_follow_the_cursor_until_a_short_page(api: httpx.AsyncClient) -> None:
    await asyncio.gather(*(create_project(api, name=f"page-{n}") for n in range(11)))
    everything = (await api.get("/projects", params={"limit": "400"})).json()["projects"]
    assert len(everything) == 11
    assert len((await api.get("/projects")).json()["projects"]) == 10  # the default limit
    pages: list[list[str]] = []
    cursor = None
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/projects", params=params)).json()
        pages.append([p["id"] for p in body["projects"]])
        assert body["applications"] == {}
        assert body["integrations"] == {}
        if len(body["projects"]) < 4:
            break
        cursor = body["pagination"]["cursor"]
        assert cursor == body["projects"][-1]["id"]
    assert [len(page) for page in pages] == [4, 4, 3]
    assert [pid for page in pages for pid in page] == [p["id"] for p in everything]


async def test_an_exactly_full_last_page_is_followed_by_an_empty_page_without_cursor(
    api: httpx.AsyncClient,
) -> None:
    await _create_many(api, ["a", "b"])
    first = (await api.get("/projects", params={"limit": "2"})).json()
    assert len(first["projects"]) == 2
    second = (
        await api.get("/projects", params={"limit": "2", "cursor": first["pagination"]["cursor"]})
    ).json()
    assert second["projects"] == []
    assert "pagination" not in second


async def test_a_cursor_survives_the_deletion_of_its_project(api: httpx.AsyncClient) -> None:
    ids = await _create_many(api, ["x1", "x2", "x3"])
    first = (await api.get("/projects", params={"limit": "1"})).json()
    assert [p["id"] for p in first["projects"]] == [ids[2]]  # newest first
    await api.delete(f"/projects/{first['pagination']['cursor']}")
    rest = (await api.get("/projects", params={"cursor": first["pagination"]["cursor"]})).json()
    assert [p["id"] for p in rest["projects"]] == [ids[1], ids[0]]


async def test_search_matches_partial_names_and_ids(api: httpx.AsyncClient) -> None:
    created = await asyncio.gather(
        create_project(api, name="ws-alpha-db"),
        create_project(api, name="ws-beta-db"),
        create_project(api, name="user-gamma"),
    )
    by_name = (await api.get("/projects", params={"search": "ws-"})).json()["projects"]
    assert sorted(p["name"] for p in by_name) == ["ws-alpha-db", "ws-beta-db"]
    case_blind = (await api.get("/projects", params={"search": "GAMMA"})).json()["projects"]
    assert [p["name"] for p in case_blind] == ["user-gamma"]
    digits = created[0]["project"]["id"].rsplit("-", 1)[1]
    by_id = (await api.get("/projects", params={"search": digits})).json()["projects"]
    assert [p["id"] for p in by_id] == [created[0]["project"]["id"]]
    assert (await api.get("/projects", params={"search": "nothing-like-it"})).json()["projects"] == []


async def test_bad_limits_and_cursors_are_400(api: httpx.AsyncClient) -> None:
    for params in ({"limit": "0"}, {"limit": "401"}, {"limit": "many"}, {"cursor": "no-such-cursor"}):
        response = await api.get("/projects", params=params)
        assert response.status_code == 400, params
        assert response.json()["message"]
    assert (await api.get("/projects", params={"limit": "400"})).status_code == 200

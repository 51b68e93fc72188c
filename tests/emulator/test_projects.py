"""Projects are real databases: create, connect, read, update, delete."""

from __future__ import annotations

import asyncio
import re

import httpx

from tenantdb.testing.neon import NeonEmulator
from tenantdb.testing.postgres import PostgresServer
from tests.emulator.helpers import connect, connection_error, create_project, query_one, uri_of

PROJECT_ID = re.compile(r"^[a-z]+-[a-z]+-\d{8}$")


async def test_created_project_connects_with_its_uri(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="tenant-a")
    uri = uri_of(created)
    # Results go to variables first: pytest would print a call's arguments (the URI) on failure.
    selected = await query_one(uri)
    database = await query_one(uri, "select current_database()")
    user = await query_one(uri, "select current_user")
    params = created["connection_uris"][0]["connection_parameters"]
    assert selected == 1
    assert (database, user) == (params["database"], params["role"])


async def test_created_project_has_neon_shaped_ids_and_defaults(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    created = await create_project(api, name="tenant-b")
    project = created["project"]
    assert PROJECT_ID.match(project["id"])
    assert created["branch"]["id"].startswith("br-")
    assert created["endpoints"][0]["id"].startswith("ep-")
    assert [d["name"] for d in created["databases"]] == ["neondb"]
    assert [r["name"] for r in created["roles"]] == ["neondb_owner"]
    assert created["databases"][0]["owner_name"] == "neondb_owner"
    assert project["pg_version"] == 17
    assert project["region_id"] == neon.options.regions[0]
    assert project["org_id"] == neon.org_id
    assert {op["action"] for op in created["operations"]} == {"create_timeline", "start_compute"}


async def test_connection_parameters_carry_physical_names_and_a_pooler_host(
    api: httpx.AsyncClient, neon: NeonEmulator, postgres_server: PostgresServer
) -> None:
    created = await create_project(api, name="c", branch={"database_name": "appdb", "role_name": "app"})
    digits = created["project"]["id"].rsplit("-", 1)[1]
    params = created["connection_uris"][0]["connection_parameters"]
    assert (params["database"], params["role"]) == (f"appdb_{digits}", f"app_{digits}")
    assert neon.physical_names(created["project"]["id"]) == (params["database"], params["role"])
    assert created["databases"][0]["name"] == "appdb"
    assert created["roles"][0]["name"] == "app"
    assert params["host"] == postgres_server.host
    assert params["pooler_host"] != params["host"]
    pooled = uri_of(created).replace(f"@{params['host']}:", f"@{params['pooler_host']}:")
    selected = await query_one(pooled)
    assert selected == 1
    ssl_required = f"sslmode={postgres_server.sslmode}" in uri_of(created)
    assert ssl_required


async def test_two_projects_with_the_same_names_are_separate_databases(api: httpx.AsyncClient) -> None:
    first = await create_project(api, name="same")
    second = await create_project(api, name="same")
    assert first["project"]["id"] != second["project"]["id"]
    await query_one(uri_of(first), "create table only_in_first (x int)")
    seen = await query_one(uri_of(second), "select count(*) from pg_tables where tablename = 'only_in_first'")
    assert seen == 0


async def test_a_tenant_role_cannot_reach_another_tenants_database(api: httpx.AsyncClient) -> None:
    first = await create_project(api, name="one")
    second = await create_project(api, name="two")
    other_db = second["connection_uris"][0]["connection_parameters"]["database"]
    crossing = uri_of(first).replace(
        "/" + first["connection_uris"][0]["connection_parameters"]["database"] + "?", "/" + other_db + "?"
    )
    reason = await connection_error(crossing)
    assert reason is not None
    assert "permission denied" in reason


async def test_a_wrong_password_is_refused(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="pw")
    password = created["connection_uris"][0]["connection_parameters"]["password"]
    assert password.startswith("npg_")
    reason = await connection_error(uri_of(created).replace(password, "npg_wrongwrongwr"))
    assert reason is not None
    assert "password authentication failed" in reason


async def test_get_project_and_unknown_project(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="get-me")
    response = await api.get(f"/projects/{created['project']['id']}")
    assert response.status_code == 200
    assert response.json()["project"]["name"] == "get-me"
    missing = await api.get("/projects/no-such-project-12345678")
    assert missing.status_code == 404
    assert set(missing.json()) >= {"code", "message"}


async def test_delete_ends_connections_and_drops_the_data_when_it_is_no_longer_recoverable(
    api: httpx.AsyncClient, neon: NeonEmulator, postgres_server: PostgresServer
) -> None:
    neon.options.recovery_window_seconds = 0.5
    created = await create_project(api, name="doomed")
    project_id = created["project"]["id"]
    names = neon.physical_names(project_id)
    held = await connect(uri_of(created), autocommit=True)
    try:
        response = await api.delete(f"/projects/{project_id}")
        assert response.status_code == 200
        assert response.json()["project"]["id"] == project_id
        assert held.closed or await _is_broken(held)
    finally:
        await held.close()
    reason = await connection_error(uri_of(created))
    assert reason is not None
    assert (await api.get(f"/projects/{project_id}")).status_code == 404
    assert (await api.delete(f"/projects/{project_id}")).status_code == 404
    assert [p["id"] for p in neon.deleted_projects()] == [project_id]
    assert neon.projects() == []
    # Kept, unreachable, for recovery; dropped once the window has passed.
    assert await neon.backing_exists(project_id) == (True, True)
    await asyncio.sleep(0.6)
    assert (await api.get("/projects", params={"recoverable": "true"})).json()["projects"] == []
    async with await connect(postgres_server.admin_url) as admin:
        cursor = await admin.execute(
            "select (select count(*) from pg_database where datname = %s), "
            "(select count(*) from pg_roles where rolname = %s)",
            names,
        )
        assert await cursor.fetchone() == (0, 0)


async def _is_broken(conn: object) -> bool:
    import psycopg

    assert isinstance(conn, psycopg.AsyncConnection)
    try:
        await conn.execute("select 1")
    except psycopg.OperationalError:
        return True
    return False


async def test_deleted_projects_are_listed_as_recoverable(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="gone")
    await api.delete(f"/projects/{created['project']['id']}")
    live = (await api.get("/projects")).json()["projects"]
    recoverable = (await api.get("/projects", params={"recoverable": "true"})).json()["projects"]
    assert live == []
    assert [p["id"] for p in recoverable] == [created["project"]["id"]]
    assert "deleted_at" in recoverable[0]
    assert "recoverable_until" in recoverable[0]


async def test_quotas_are_stored_and_zero_means_unlimited_not_paused(api: httpx.AsyncClient) -> None:
    quota = {"compute_time_seconds": 0, "data_transfer_bytes": 0, "active_time_seconds": 3600}
    created = await create_project(api, name="quota", settings={"quota": quota})
    assert created["project"]["settings"]["quota"] == quota
    selected = await query_one(uri_of(created))
    assert selected == 1  # a zero quota does not pause anything
    endpoint = created["endpoints"][0]
    assert endpoint["disabled"] is False
    assert endpoint["current_state"] == "active"


async def test_patch_project_updates_name_and_merges_quota(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="before", settings={"quota": {"active_time_seconds": 10}})
    project_id = created["project"]["id"]
    response = await api.patch(
        f"/projects/{project_id}",
        json={"project": {"name": "after", "settings": {"quota": {"compute_time_seconds": 20}}}},
    )
    assert response.status_code == 200
    project = response.json()["project"]
    assert project["name"] == "after"
    assert project["settings"]["quota"] == {"active_time_seconds": 10, "compute_time_seconds": 20}
    assert response.json()["operations"] == []


async def test_create_honours_endpoint_settings(api: httpx.AsyncClient) -> None:
    created = await create_project(
        api,
        name="sized",
        region_id="aws-eu-central-1",
        pg_version=16,
        default_endpoint_settings={
            "autoscaling_limit_min_cu": 0.5,
            "autoscaling_limit_max_cu": 4,
            "suspend_timeout_seconds": 300,
        },
    )
    endpoint = created["endpoints"][0]
    assert (endpoint["autoscaling_limit_min_cu"], endpoint["autoscaling_limit_max_cu"]) == (0.5, 4)
    assert endpoint["suspend_timeout_seconds"] == 300
    assert endpoint["region_id"] == "aws-eu-central-1"
    assert created["project"]["pg_version"] == 16


async def test_invalid_creates_are_refused_with_400(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    cases = [
        {"project": {"region_id": "mars-north-1"}},
        {"project": {"pg_version": 12}},
        {"project": {"name": ""}},
        {
            "project": {
                "default_endpoint_settings": {"autoscaling_limit_min_cu": 2, "autoscaling_limit_max_cu": 1}
            }
        },
        {"project": {"settings": {"quota": {"compute_time_seconds": -1}}}},
        {"nothing": {}},
    ]
    for body in cases:
        response = await api.post("/projects", json=body)
        assert response.status_code == 400, body
        assert response.json()["message"]
    bad_region = await api.post("/projects", json={"project": {"region_id": "mars-north-1"}})
    assert "mars-north-1" in bad_region.json()["message"]
    not_json = await api.post("/projects", content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert neon.projects() == []


async def test_another_organisation_is_not_found(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    assert (await api.post("/projects", json={"project": {"org_id": "org-someone-else"}})).status_code == 404
    assert (await api.get("/projects", params={"org_id": "org-someone-else"})).status_code == 404
    assert (await api.post("/projects", json={"project": {"org_id": neon.org_id}})).status_code == 201


async def test_stop_drops_every_database_it_made(postgres_server: PostgresServer) -> None:

    from tests.emulator.helpers import api_client

    emulator = NeonEmulator(postgres_admin_url=postgres_server.admin_url)
    await emulator.start()
    async with api_client(emulator) as client:
        created = await create_project(client, name="left-behind")
    names = emulator.physical_names(created["project"]["id"])
    await emulator.stop()
    assert emulator.projects() == []
    async with await connect(postgres_server.admin_url) as admin:
        cursor = await admin.execute(
            "select count(*) from pg_database where datname = %s union all "
            "select count(*) from pg_roles where rolname = %s",
            names,
        )
        assert [row[0] for row in await cursor.fetchall()] == [0, 0]

"""Taking over what a platform already has: a Neon project named by ``spec.projectId``, the rows
Sim's in-app provisioning left, and databases users brought themselves — tried as a platform
switching from in-app provisioning to the operator would."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import psycopg

from tenantdb.crypto import EncryptionKey
from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import global_database, workspace_database
from tests.integration.conftest import one_by_one


def _condition(obj: dict[str, Any] | None, kind: str = "Ready") -> dict[str, Any]:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


def _neon_api(stack: LocalStack) -> httpx.AsyncClient:
    """Neon's API as the platform's in-app provisioning used it."""
    assert stack.neon is not None
    headers = {"Authorization": f"Bearer {stack.neon.api_key}"}
    return httpx.AsyncClient(base_url=stack.neon.base_url, headers=headers, timeout=10)


async def _app_project(
    stack: LocalStack, name: str, *, database: str = "neondb", role: str = "neondb_owner", stored: bool = True
) -> tuple[str, str, str]:
    """A project made by the app (not named by the operator) with a table of user data in it:
    ``(project id, branch id, its connection URI)``."""
    async with _neon_api(stack) as neon:
        answer = await neon.post(
            "/projects",
            json={
                "project": {
                    "name": name,
                    "store_passwords": stored,
                    "branch": {"database_name": database, "role_name": role},
                }
            },
        )
        answer.raise_for_status()
    body = answer.json()
    uri = body["connection_uris"][0]["connection_uri"]
    async with await psycopg.AsyncConnection.connect(uri, connect_timeout=5) as conn:
        await conn.execute("create table notes (body text)")
        await conn.execute("insert into notes values ('kept')")
    return body["project"]["id"], body["branch"]["id"], uri


async def _published_uri(stack: LocalStack, name: str) -> str:
    secret = await stack.get("Secret", f"{name}-connection")
    assert secret is not None
    key = EncryptionKey(stack.encryption_key)
    return key.decrypt(base64.b64decode(secret["data"]["DATABASE_URL_ENCRYPTED"]).decode())


async def _notes(uri: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(uri, connect_timeout=5) as conn:
        cursor = await conn.execute("select body from notes")
        return [str(row[0]) for row in await cursor.fetchall()]


async def _execute(stack: LocalStack, query: str, *params: Any) -> None:
    async with await psycopg.AsyncConnection.connect(stack.metadata_url, autocommit=True) as conn:
        await conn.execute(query.encode(), params)


async def _reasons(stack: LocalStack, name: str) -> list[str]:
    return [str(e.get("reason")) for e in await stack.events_for(name)]


def _live(stack: LocalStack) -> dict[str, str]:
    assert stack.neon is not None
    return {str(p["id"]): str(p["name"]) for p in stack.neon.projects()}


async def test_a_project_named_by_the_spec_is_taken_over_with_its_data_not_created_again(
    operator: LocalStack,
) -> None:
    project_id, _branch, _app_uri = await _app_project(operator, "app-made-for-alice")
    before = set(_live(operator))

    await operator.apply(global_database("user-alice", "alice", projectId=project_id))
    ready = await operator.wait_ready("GlobalDatabase", "user-alice")

    status = ready["status"]
    assert status["projectId"] == project_id
    assert status["originalProjectName"] == "app-made-for-alice"
    assert status["adoptedAt"]
    live = _live(operator)
    assert set(live) == before, "no project was created"
    assert live[project_id] == status["projectName"] != "app-made-for-alice"
    # The connection string published reaches the user's own data.
    assert await _notes(await _published_uri(operator, "user-alice")) == ["kept"]
    assert "Adopted" in await _reasons(operator, "user-alice")
    decided = await operator.metadata_query(
        "select action, decided_by, project_id, details from tenantdb_decision_log where tenant_id = %s",
        "alice",
    )
    assert decided == [
        ("adopt", "take-over (spec.projectId)", project_id, {"originalProjectName": "app-made-for-alice"})
    ]

    # From then on it is the operator's as a created one: deleted with the resource.
    await operator.delete("GlobalDatabase", "user-alice")
    await operator.wait_gone("GlobalDatabase", "user-alice", timeout=60)
    assert project_id not in _live(operator)


async def test_a_project_id_outside_the_organisation_creates_nothing_and_says_so(
    operator: LocalStack,
) -> None:
    before = set(_live(operator))
    await operator.apply(global_database("user-bob", "bob", projectId="no-such-project-123"))
    stuck = await operator.wait_for(
        "GlobalDatabase",
        "user-bob",
        lambda o: _condition(o).get("reason") == "ProjectNotFound",
        what="Ready=False ProjectNotFound",
    )
    assert _condition(stuck)["status"] == "False"
    assert set(_live(operator)) == before
    assert (await _reasons(operator, "user-bob")).count("ProjectNotFound") == 1


async def test_a_project_held_by_another_resource_is_left_as_it_is(operator: LocalStack) -> None:
    project_id, _branch, _uri = await _app_project(operator, "app-made-shared")
    await operator.apply(workspace_database("ws-first", "carol", "ws-first", projectId=project_id))
    first = await operator.wait_ready("WorkspaceDatabase", "ws-first")
    await operator.apply(workspace_database("ws-second", "dave", "ws-second", projectId=project_id))
    await operator.wait_for(
        "WorkspaceDatabase",
        "ws-second",
        lambda o: _condition(o).get("reason") == "Conflict",
        what="Ready=False Conflict",
    )
    assert _live(operator)[project_id] == first["status"]["projectName"]
    assert _condition(await operator.get("WorkspaceDatabase", "ws-first"))["status"] == "True"


async def test_a_project_whose_password_neon_cannot_reveal_gets_a_new_one_that_works(
    operator: LocalStack,
) -> None:
    project_id, _branch, old_uri = await _app_project(
        operator, "app-made-sqlrole", database="appdb", role="app_owner", stored=False
    )
    await operator.apply(global_database("user-erin", "erin", projectId=project_id))
    ready = await operator.wait_ready("GlobalDatabase", "user-erin")
    # The project's own database and role (the spec's defaults are not in it).
    assert (ready["status"]["databaseName"], ready["status"]["roleName"]) == ("appdb", "app_owner")
    uri = await _published_uri(operator, "user-erin")
    assert uri != old_uri
    assert await _notes(uri) == ["kept"]
    assert "PasswordReset" in await _reasons(operator, "user-erin")


async def test_sims_in_app_rows_are_taken_over_as_they_are(operator: LocalStack) -> None:
    """A tenant the in-app hooks provisioned: its row and GLOBAL_DB_URL name the project. The
    resource takes it over without a conflict with itself, and nothing the app reads changes."""
    project_id, branch_id, app_uri = await _app_project(operator, "sim-global-frank")
    key = EncryptionKey(operator.encryption_key)
    await _execute(
        operator,
        "insert into user_global_database (id, user_id, ownership_type, neon_project_id, neon_branch_id, "
        "neon_connection_uri, database_name) values ('row-frank', 'frank', 'platform', %s, %s, %s, 'neondb')",
        project_id,
        branch_id,
        key.encrypt(app_uri),
    )
    await _execute(
        operator,
        "insert into environment (id, user_id, variables) values ('env-frank', 'frank', %s)",
        json.dumps({"GLOBAL_DB_URL": key.encrypt(app_uri)}),
    )

    assert operator.neon is not None
    operator.neon.reset_calls()
    await operator.apply(global_database("user-frank", "frank", projectId=project_id))
    await operator.wait_ready("GlobalDatabase", "user-frank")
    routes = [
        c.route for c in one_by_one(operator.neon.calls()) if c.path.startswith(f"/projects/{project_id}")
    ]
    # Counted: what switching a fleet on costs in Neon's rate limit (the README's arithmetic):
    # read, rename, endpoints, databases, roles, the spec's compute settings; then the password
    # (reveal and connection URI), which against Neon the row's URI spares: the emulator's URIs
    # name its one server's physical databases, so no row URI matches the logical names here.
    assert len(routes) <= 8, routes

    assert await _published_uri(operator, "user-frank") == app_uri
    rows = await operator.metadata_query(
        "select neon_project_id, neon_connection_uri from user_global_database where user_id = 'frank'"
    )
    assert rows[0][0] == project_id
    assert key.decrypt(rows[0][1]) == app_uri
    env = await operator.metadata_query("select variables from environment where user_id = 'frank'")
    variables = json.loads(env[0][0]) if isinstance(env[0][0], str) else env[0][0]
    assert key.decrypt(variables["GLOBAL_DB_URL"]) == app_uri


async def test_a_database_the_user_brought_is_never_touched(operator: LocalStack) -> None:
    key = EncryptionKey(operator.encryption_key)
    own_uri = "postgresql://grace:own-secret@db.grace.example/grace"
    stored_uri = key.encrypt(own_uri)
    stored_env = json.dumps({"GLOBAL_DB_URL": stored_uri, "OTHER": "x"})
    await _execute(
        operator,
        "insert into user_global_database (id, user_id, ownership_type, neon_project_id, neon_branch_id, "
        "neon_connection_uri, database_name) "
        "values ('row-grace', 'grace', 'user', 'her-own', 'br', %s, 'grace')",
        stored_uri,
    )
    await _execute(
        operator,
        "insert into environment (id, user_id, variables) values ('env-grace', 'grace', %s)",
        stored_env,
    )
    before = set(_live(operator))

    await operator.apply(global_database("user-grace", "grace"))
    stuck = await operator.wait_for(
        "GlobalDatabase",
        "user-grace",
        lambda o: _condition(o).get("reason") == "UserOwned",
        what="Ready=False UserOwned",
    )
    assert "brought" in _condition(stuck)["message"]
    assert set(_live(operator)) == before, "no project was created"

    await operator.delete("GlobalDatabase", "user-grace")
    await operator.wait_gone("GlobalDatabase", "user-grace", timeout=60)
    rows = await operator.metadata_query(
        "select ownership_type, neon_project_id, neon_connection_uri from user_global_database "
        "where user_id = 'grace'"
    )
    assert rows == [("user", "her-own", stored_uri)]
    env = await operator.metadata_query("select variables::text from environment where user_id = 'grace'")
    assert json.loads(env[0][0]) == json.loads(stored_env)


async def test_an_env_var_row_the_operator_cannot_read_is_said_once_and_left_alone(
    operator: LocalStack,
) -> None:
    await _execute(
        operator,
        "insert into workspace_environment (id, workspace_id, variables) values ('wenv-h', 'ws-h', %s)",
        json.dumps("not an object"),
    )
    await operator.apply(workspace_database("ws-h", "heidi", "ws-h"))

    async def said() -> bool:
        obj = await operator.get("WorkspaceDatabase", "ws-h")
        return _condition(obj, "Synced").get("reason") == "MetadataUnreadable"

    await eventually(said, timeout=30, what="Synced=False MetadataUnreadable")
    obj = await operator.get("WorkspaceDatabase", "ws-h")
    assert "unavailable" not in _condition(obj, "Synced")["message"]
    rows = await operator.metadata_query(
        "select variables::text from workspace_environment where workspace_id = 'ws-h'"
    )
    assert json.loads(rows[0][0]) == "not an object"
    assert (await _reasons(operator, "ws-h")).count("MetadataUnreadable") == 1


async def test_take_overs_through_lost_answers_and_an_abrupt_restart_make_nothing_new(
    operator: LocalStack,
) -> None:
    """Neon failing and losing answers after acting, and the operator killed mid-way: every
    project named is taken over once, none is created, each keeps its data and old name."""
    assert operator.neon is not None
    made = {f"user-{n}": await _app_project(operator, f"app-made-{n}") for n in ("ivan", "judy", "ken")}
    before = set(_live(operator))
    options = operator.neon.options
    options.error_rate, options.drop_rate, options.fault_after_processing = 0.25, 0.15, True
    for name, (project_id, _branch, _uri) in made.items():
        await operator.apply(global_database(name, name.removeprefix("user-"), projectId=project_id))
    await asyncio.sleep(1.0)
    await operator.stop_operator(abruptly=True)
    await operator.start_operator()
    await asyncio.sleep(1.0)
    options.error_rate = options.drop_rate = 0.0

    for name, (project_id, _branch, _uri) in made.items():
        ready = await operator.wait_ready("GlobalDatabase", name, timeout=90)
        assert ready["status"]["projectId"] == project_id
        assert ready["status"]["originalProjectName"] == f"app-made-{name.removeprefix('user-')}"
        assert await _notes(await _published_uri(operator, name)) == ["kept"]
    live = _live(operator)
    assert set(live) == before
    assert all(not live[project_id].startswith("app-made-") for project_id, _b, _u in made.values())

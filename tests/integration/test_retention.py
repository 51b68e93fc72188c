"""Kept projects do not pile up: the real operator (kopf, the Neon emulator, real PostgreSQL)
deletes a project kept by deletionPolicy: Retain once it was kept longer than
TENANTDB_RETAINED_PROJECT_RETENTION_DAYS, and never one that is not ours or is held again."""

from __future__ import annotations

import pytest

from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import global_database
from tests.integration.test_neon_side import _neon_api


async def _kept(stack: LocalStack, name: str, user: str) -> str:
    """A GlobalDatabase with deletionPolicy: Retain, made and deleted: its kept project's id."""
    await stack.apply(global_database(name, user, deletionPolicy="Retain"))
    ready = await stack.wait_ready("GlobalDatabase", name)
    await stack.delete("GlobalDatabase", name)
    await stack.wait_gone("GlobalDatabase", name)
    return str(ready["status"]["projectId"])


async def _backdate(stack: LocalStack, project_id: str, days: int) -> None:
    """As if it had been kept ``days`` ago (what the operator counts from)."""
    await stack.metadata_query(
        "UPDATE tenantdb_orphaned_project SET retained_at = retained_at - make_interval(days => %s) "
        "WHERE neon_project_id = %s RETURNING 1",
        days,
        project_id,
    )


@pytest.mark.parametrize("sweep_action", ["auto", "off"], ids=["beside the sweep", "with the sweep off"])
async def test_a_retained_project_past_its_retention_is_deleted_and_no_other(
    stack: LocalStack, sweep_action: str
) -> None:
    assert stack.neon is not None
    await stack.start_operator(
        sweep_interval_seconds=1.0,
        create_landing_seconds=1.0,
        retained_project_retention_days=30,
        sweep_action=sweep_action,
    )
    expired = await _kept(stack, "user-expired", "edith")
    young = await _kept(stack, "user-young", "yann")
    taken_back = await _kept(stack, "user-taken-back", "tara")
    rows = await stack.metadata_query(
        "SELECT neon_project_id FROM tenantdb_orphaned_project "
        "WHERE disposition = 'retained' AND retained_at IS NOT NULL"
    )
    assert {row[0] for row in rows} == {expired, young, taken_back}  # each recorded with when it was kept

    # A project of someone else's, recorded as retained long ago (by hand, or a bug): not ours.
    async with _neon_api(stack) as neon:
        answer = await neon.post("/projects", json={"project": {"name": "customer-production"}})
        assert answer.status_code == 201
        foreign = answer.json()["project"]["id"]
    await stack.metadata_query(
        "INSERT INTO tenantdb_orphaned_project (id, neon_project_id, kind, namespace, name, reason, "
        "disposition, retained_at, created_at, updated_at) VALUES ('f', %s, 'GlobalDatabase', 'default', "
        "'x', 'Retain', 'retained', now() - interval '400 days', now(), now()) RETURNING 1",
        foreign,
    )
    # The platform took one back over: its row names the project again.
    await stack.metadata_query(
        "INSERT INTO user_global_database (id, user_id, neon_project_id, neon_branch_id, "
        "neon_connection_uri, database_name) VALUES ('t', 'tara', %s, 'br', 'a:b:c', 'neondb') RETURNING 1",
        taken_back,
    )
    for project_id in (expired, taken_back):
        await _backdate(stack, project_id, 31)
    await _backdate(stack, young, 29)

    async def expired_is_gone() -> bool:
        return expired not in {p["id"] for p in stack.neon.projects()}

    await eventually(expired_is_gone, timeout=30, what="the expired project deleted")
    left = {p["id"] for p in stack.neon.projects()}
    assert {young, taken_back, foreign} <= left
    recorded = {
        row[0] for row in await stack.metadata_query("SELECT neon_project_id FROM tenantdb_orphaned_project")
    }
    assert recorded == {young, taken_back, foreign}  # the deleted one's record went with it
    registry = stack.metrics.registry
    assert registry.get_sample_value("tenantdb_swept_projects_total", {"action": "expired"}) == 1

    async def counted() -> bool:
        return registry.get_sample_value("tenantdb_retained_projects") == 3

    await eventually(counted, timeout=10, what="the retained gauge read from the table")
    deletes = [c for c in stack.neon.calls() if c.route == "DELETE /projects/{project_id}"]
    assert [c.path for c in deletes] == [f"/projects/{expired}"]
    await stack.stop_operator()

"""Zero-code Sim: rows written into a Sim-shaped database as Sim writes them, and the operator
(kopf for real, the Neon and Kubernetes emulators, real PostgreSQL) following them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tenantdb.crypto import EncryptionKey
from tenantdb.reconcile.sim_sync.names import shard_namespace
from tenantdb.testing.postgres import PostgresServer
from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import global_database


@pytest.fixture
async def sim(postgres_server: PostgresServer) -> AsyncIterator[LocalStack]:
    # A resync far away: what puts GLOBAL_DB_URL back below is the sync, not the fleet observation.
    overrides = {"sim_sync": True, "sim_namespace": "default", "resync_interval_seconds": 3600.0}
    async with LocalStack(postgres=postgres_server, sim_schema=True, settings_overrides=overrides) as local:
        await local.start_operator()
        yield local
        await local.stop_operator()


def _spec(obj: dict[str, Any] | None) -> dict[str, Any]:
    return dict((obj or {}).get("spec") or {})


async def test_a_user_and_a_workspace_get_their_databases_env_vars_and_budget(sim: LocalStack) -> None:
    key = EncryptionKey(sim.encryption_key)
    user = await sim.sim.register_user(name="Ada")
    member = await sim.sim.register_user(name="Bob")
    name = f"user-{user}"
    glob = await sim.wait_for("GlobalDatabase", name, lambda o: o is not None, timeout=15, what="creation")
    assert glob is not None
    assert glob["metadata"]["labels"]["tenantdb.io/managed-by"] == "sim-sync"
    assert _spec(glob)["userId"] == user
    budget = await sim.wait_for("DatabaseBudget", name, lambda o: o is not None, timeout=15, what="creation")
    assert _spec(budget)["tier"] == "free"
    await sim.wait_ready("GlobalDatabase", name, timeout=60)

    async def has_global_url() -> bool:
        return "GLOBAL_DB_URL" in await sim.sim.personal_env(user)

    await eventually(has_global_url, timeout=30, what="GLOBAL_DB_URL in Sim's environment row")

    # Sim's personal save: the whole object replaced with what the page had loaded earlier.
    await sim.sim.save_personal_env(user, {"OPENAI_API_KEY": key.encrypt("sk-1")})
    await eventually(has_global_url, timeout=15, what="GLOBAL_DB_URL put back after Sim's save")
    assert "OPENAI_API_KEY" in await sim.sim.personal_env(user)

    workspace = await sim.sim.create_workspace(user)
    await sim.sim.add_member(workspace, member)
    ws_name = f"workspace-{workspace}"
    ws = await sim.wait_ready("WorkspaceDatabase", ws_name, timeout=60)
    assert _spec(ws)["userId"] == user
    assert _spec(ws)["workspaceId"] == workspace

    async def has_agent_url() -> bool:
        return "AGENT_DB_URL" in await sim.sim.workspace_env(workspace)

    await eventually(has_agent_url, timeout=30, what="AGENT_DB_URL in Sim's workspace_environment row")
    assert key.decrypt((await sim.sim.workspace_env(workspace))["AGENT_DB_URL"]).startswith("postgresql://")
    assert await sim.sim.workspace_env_credentials(workspace) == {
        "AGENT_DB_URL": {(user, "admin"), (member, "member")}
    }

    # A plan change in Sim (its Pro plan): the budget's tier follows, and back when the
    # subscription ends.
    subscription = await sim.sim.subscribe(user, "pro_6000")
    await sim.wait_for(
        "DatabaseBudget", name, lambda o: _spec(o).get("tier") == "paid", timeout=15, what="tier paid"
    )
    await sim.sim.set_subscription_status(subscription, "canceled")
    await sim.wait_for(
        "DatabaseBudget", name, lambda o: _spec(o).get("tier") == "free", timeout=15, what="tier free"
    )

    # A team plan is the organisation's: each member of the organisation gets it.
    organization = await sim.sim.create_organization()
    await sim.sim.add_org_member(organization, user, role="owner")
    await sim.sim.subscribe(organization, "team_25000", seats=2)
    await sim.wait_for(
        "DatabaseBudget", name, lambda o: _spec(o).get("tier") == "paid", timeout=15, what="team tier"
    )

    # A plan no tier claims: the default tier, and a Warning on the budget naming the plan.
    newcomer = await sim.sim.register_user(name="Cy")
    await sim.sim.subscribe(newcomer, "scale_100000")

    async def warned() -> bool:
        events = await sim.events_for(f"user-{newcomer}")
        return any(e.get("reason") == "UnclaimedSimPlan" and e.get("type") == "Warning" for e in events)

    await eventually(warned, timeout=15, what="a Warning about the unclaimed plan")
    cy_budget = await sim.get("DatabaseBudget", f"user-{newcomer}")
    assert _spec(cy_budget)["tier"] == "free"
    assert sim.metrics.registry.get_sample_value("tenantdb_sim_unclaimed_plan_users") == 1

    # An archive is a delete for Sim: the resource goes, its Neon project kept (the default).
    await sim.sim.archive_workspace(workspace)
    await sim.wait_gone("WorkspaceDatabase", ws_name, timeout=60)
    assert sim.neon is not None

    # A deleted user: every resource of the user goes.
    await sim.sim.delete_user(user)
    await sim.wait_gone("GlobalDatabase", name, timeout=60)
    await sim.wait_gone("DatabaseBudget", name, timeout=60)


async def test_a_resource_applied_by_hand_wins_and_the_sync_says_so(sim: LocalStack) -> None:
    user = await sim.sim.register_user()
    # Applied by hand (or by GitOps) under a name of its own, before or after the sync saw the user.
    await sim.apply(global_database("hand-made", user))
    await sim.wait_ready("GlobalDatabase", "hand-made", timeout=60)

    async def told() -> bool:
        events = await sim.events_for("hand-made")
        return any(e.get("reason") == "NotManagedBySimSync" for e in events)

    await eventually(told, timeout=15, what="the sync's event on the hand-made resource")
    assert await sim.get("GlobalDatabase", f"user-{user}") is None
    # The budget is still the sync's to make.
    await sim.wait_for("DatabaseBudget", f"user-{user}", lambda o: o is not None, timeout=15)

    await sim.sim.delete_user(user)
    await sim.wait_gone("DatabaseBudget", f"user-{user}", timeout=60)
    assert await sim.get("GlobalDatabase", "hand-made") is not None


async def test_a_user_sim_does_not_have_is_tenant_not_found(sim: LocalStack) -> None:
    await sim.apply(global_database("ghost", "no-such-user"))

    def tenant_not_found(obj: dict[str, Any] | None) -> bool:
        conditions = ((obj or {}).get("status") or {}).get("conditions") or []
        return any(c.get("reason") == "TenantNotFound" for c in conditions)

    obj = await sim.wait_for("GlobalDatabase", "ghost", tenant_not_found, timeout=60, what="TenantNotFound")
    assert obj is not None
    message = next(c["message"] for c in obj["status"]["conditions"] if c.get("reason") == "TenantNotFound")
    assert "no user or workspace" in message


def _budget_lists(database: str) -> Callable[[dict[str, Any] | None], bool]:
    def lists(obj: dict[str, Any] | None) -> bool:
        entries = ((obj or {}).get("status") or {}).get("databases") or []
        return any(entry.get("name") == database for entry in entries)

    return lists


async def test_a_workspace_counts_against_whom_sim_bills_and_follows_its_departing_owner(
    sim: LocalStack,
) -> None:
    ada = await sim.sim.register_user(name="Ada")
    bob = await sim.sim.register_user(name="Bob")
    workspace = await sim.sim.create_workspace(ada)
    await sim.sim.add_member(workspace, bob, permission="admin")
    ws_name = f"workspace-{workspace}"
    await sim.wait_ready("WorkspaceDatabase", ws_name, timeout=60)
    await sim.wait_for("DatabaseBudget", f"user-{bob}", lambda o: o is not None, timeout=15)

    # Ada deletes her account: Sim bills the workspace to Bob, then hands it to him.
    await sim.sim.delete_account(ada)
    assert await sim.sim.workspace_payer(workspace) == (bob, bob)
    await sim.wait_gone("DatabaseBudget", f"user-{ada}", timeout=60)

    # The workspace's database counts against Bob's budget, at once (no consumption sync is due).
    budget = await sim.wait_for(
        "DatabaseBudget", f"user-{bob}", _budget_lists(ws_name), timeout=30, what="Bob pays for it"
    )
    assert budget is not None
    ws = await sim.get("WorkspaceDatabase", ws_name)
    assert _spec(ws)["billedUserId"] == bob
    assert _spec(ws)["userId"] == ada  # immutable: who it was made for
    assert ((ws or {}).get("status") or {}).get("phase") == "Ready"
    assert sim.runtime is not None
    _, databases = sim.runtime.budgets.registered([ada])
    assert databases == []  # nothing left counting against the departed owner


async def test_two_shards_each_make_their_own_tenants_and_one_down_stops_only_its_own(
    postgres_server: PostgresServer,
) -> None:
    shards = ["shard-a", "shard-b"]
    overrides = {"sim_sync": True, "sim_namespaces": ",".join(shards), "resync_interval_seconds": 3600.0}
    async with LocalStack(postgres=postgres_server, sim_schema=True, settings_overrides=overrides) as local:
        await local.start_operator(namespaces="shard-a")
        shard_b = await local.start_replica(namespaces="shard-b")

        async def user_in(namespace: str) -> str:
            """A user registered in Sim whose id hashes to ``namespace``."""
            while shard_namespace(user_id := str(uuid.uuid4()), shards) != namespace:
                pass
            return await local.sim.register_user(user_id=user_id)

        try:
            for namespace in shards:
                user = await user_in(namespace)
                # Made in the namespace its id hashes to, by the shard watching it, and Ready there.
                await local.wait_ready("GlobalDatabase", f"user-{user}", namespace=namespace, timeout=60)
                await local.wait_for(
                    "DatabaseBudget", f"user-{user}", lambda o: o is not None, namespace=namespace, timeout=15
                )
                other = next(ns for ns in shards if ns != namespace)
                assert await local.get("GlobalDatabase", f"user-{user}", other) is None
        finally:
            await shard_b.stop(abruptly=False)

        # Shard b is down: its new tenants wait for it, shard a's are made as before.
        waiting = await user_in("shard-b")
        served = await user_in("shard-a")
        await local.wait_ready("GlobalDatabase", f"user-{served}", namespace="shard-a", timeout=60)
        assert await local.get("GlobalDatabase", f"user-{waiting}", "shard-b") is None
        assert await local.get("GlobalDatabase", f"user-{waiting}", "shard-a") is None
        await local.stop_operator()

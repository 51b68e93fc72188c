"""The Sim sync against a Sim-shaped database on the real PostgreSQL: subscriptions, statuses,
organisation memberships and workspace payers written as Sim writes them, read through the
store's queries (the fingerprint, the snapshot, the new rows) into the resources' specs."""

from __future__ import annotations

from typing import Any

from tenantdb.config import Settings
from tenantdb.metrics import Metrics
from tenantdb.reconcile.sim_sync import SimSync
from tenantdb.store import MetadataStore
from tenantdb.testing.sim_schema import SimRows
from tests.unit.test_sim_sync_loop import Resources

from .conftest import Database

# Pro and Max told apart (tier names are plain strings).
PRO_AND_MAX = {
    "free": "free",
    "pro_25000": "max",
    "team_25000": "max",
    "pro": "pro",
    "pro_*": "pro",
    "team": "pro",
    "team_*": "pro",
    "enterprise": "enterprise",
}


class Events:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []

    async def __call__(
        self, kind: str, name: str, reason: str, message: str, *, namespace: str = "", type_: str = "Normal"
    ) -> None:
        self.posted.append((type_, name, reason))


def _sync(store: MetadataStore, resources: Resources, events: Events, metrics: Metrics) -> SimSync:
    return SimSync(
        settings=Settings(encryption_key="ab" * 32, sim_sync=True),
        tables=store,
        resources=resources,
        post_event=events,
        plan_tiers=lambda: PRO_AND_MAX,
        metrics=metrics,
    )


def _tier(resources: Resources, user: str) -> str:
    return str(resources.objects[("databasebudgets", f"user-{user}")]["spec"]["tier"])


def _workspace_spec(resources: Resources, workspace: str) -> dict[str, Any]:
    return dict(resources.objects[("workspacedatabases", f"workspace-{workspace}")]["spec"])


async def test_users_land_on_the_tier_of_the_plan_sim_bills_them_on(
    sim_store: MetadataStore, database: Database
) -> None:
    sim = SimRows(database.url)
    users = {
        name: await sim.register_user(name=name) for name in ("ada", "bob", "cy", "dan", "eve", "fay", "gus")
    }
    await sim.subscribe(users["ada"], "pro_6000")
    await sim.subscribe(users["bob"], "pro_25000", status="past_due")  # Sim still counts it
    await sim.subscribe(users["cy"], "pro_25000", status="trialing")  # Sim does not
    await sim.subscribe(users["fay"], "pro", status="unpaid")
    await sim.subscribe(users["fay"], "team", status="incomplete")
    await sim.subscribe(users["dan"], "enterprise", status="canceled")
    teams = await sim.create_organization(name="Teams")
    await sim.subscribe(teams, "team_25000", seats=2)
    await sim.add_org_member(teams, users["dan"], role="owner")
    corp = await sim.create_organization(name="Corp")
    await sim.subscribe(corp, "enterprise", seats=10)
    await sim.add_org_member(corp, users["eve"])
    await sim.subscribe(users["eve"], "pro_6000")  # a personal plan of a lower rank
    await sim.subscribe(users["gus"], "business_50000")  # a plan no tier claims

    resources, events, metrics = Resources(), Events(), Metrics()
    sync = _sync(sim_store, resources, events, metrics)
    await sync.run_once()
    assert {name: _tier(resources, user) for name, user in users.items()} == {
        "ada": "pro",
        "bob": "max",
        "cy": "free",
        "dan": "max",
        "eve": "enterprise",
        "fay": "free",
        "gus": "free",
    }
    assert events.posted == [("Warning", f"user-{users['gus']}", "UnclaimedSimPlan")]
    assert metrics.registry.get_sample_value("tenantdb_sim_unclaimed_plan_users") == 1

    # Stripe moves Ada from Pro to Max; Cy's trial converts; Gus is left where he is.
    subscription = await sim.subscribe(users["ada"], "pro_6000")
    await sim.change_plan(subscription, "pro_25000")
    cy_trial = await sim.subscribe(users["cy"], "pro_6000", status="trialing")
    await sim.set_subscription_status(cy_trial, "active")
    result = await sync.run_once()
    assert result is not None
    assert result.patched == 2
    assert (_tier(resources, users["ada"]), _tier(resources, users["cy"])) == ("max", "pro")
    assert len(events.posted) == 1  # Gus was told once, not once per pass

    # Dan leaves the organisation: its plan is no longer his.
    async with await database.connect() as conn:
        await conn.execute("DELETE FROM member WHERE user_id = %s", (users["dan"],))
    await sync.run_once()
    assert _tier(resources, users["dan"]) == "free"


async def test_a_workspace_database_follows_the_user_sim_bills_for_it(
    sim_store: MetadataStore, database: Database
) -> None:
    sim = SimRows(database.url)
    ada, bob, cy = [await sim.register_user(name=name) for name in ("ada", "bob", "cy")]
    workspace = await sim.create_workspace(ada)
    await sim.add_member(workspace, bob, permission="admin")
    resources = Resources()
    sync = _sync(sim_store, resources, Events(), Metrics())
    await sync.run_once()
    assert _workspace_spec(resources, workspace) == {"userId": ada, "workspaceId": workspace}

    # Cy takes over the bill. In the same poll a new workspace is created: the cheap path of
    # new rows alone must not hide the payer that changed.
    await sim.set_billed_account(workspace, cy)
    second = await sim.create_workspace(bob)
    result = await sync.run_once()
    assert result is not None
    assert (result.created, result.patched) == (1, 1)
    assert _workspace_spec(resources, workspace)["billedUserId"] == cy
    assert _workspace_spec(resources, second) == {"userId": bob, "workspaceId": second}

    # A payer change alone is seen too.
    await sim.set_billed_account(workspace, ada)
    await sync.run_once()
    assert _workspace_spec(resources, workspace)["billedUserId"] == ada

    # Ada deletes her account: Sim hands the bill to the owner... Ada herself; so to the other
    # admin, Bob, then the ownership to the billed account, Bob.
    await sim.delete_account(ada)
    assert await sim.workspace_payer(workspace) == (bob, bob)
    await sync.run_once()
    assert _workspace_spec(resources, workspace) == {
        "userId": ada,
        "workspaceId": workspace,
        "billedUserId": bob,
    }
    assert ("databasebudgets", f"user-{ada}") not in resources.objects


class CountedSnapshots:
    """The store, counting its full snapshots of Sim."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self.snapshots = 0
        self.sim_fingerprint = store.sim_fingerprint
        self.sim_new_rows = store.sim_new_rows
        self.restore_user_env_var = store.restore_user_env_var

    async def sim_snapshot(self) -> Any:
        self.snapshots += 1
        return await self.store.sim_snapshot()


async def test_new_rows_alone_still_take_the_cheap_path(sim_store: MetadataStore, database: Database) -> None:
    """New workspaces add their share to the payers' sum: a registration is still no snapshot."""
    sim = SimRows(database.url)
    ada = await sim.register_user()
    resources, tables = Resources(), CountedSnapshots(sim_store)
    sync = SimSync(
        settings=Settings(encryption_key="ab" * 32, sim_sync=True),
        tables=tables,
        resources=resources,
        post_event=Events(),
    )
    await sync.run_once()
    assert tables.snapshots == 1
    bob = await sim.register_user()
    await sim.create_workspace(bob)
    await sim.create_workspace(ada)
    result = await sync.run_once()
    assert result is not None
    assert result.created == 4  # Bob's database and budget, two workspaces' databases
    assert tables.snapshots == 1

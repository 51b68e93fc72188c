"""Zero-code Sim: rows written into a Sim-shaped database as Sim writes them, and the operator
(kopf for real, the Neon and Kubernetes emulators, real PostgreSQL) following them."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tenantdb.crypto import EncryptionKey
from tenantdb.kube import CustomResources, KubeClient
from tenantdb.metrics import Metrics
from tenantdb.reconcile.sim_sync import SimSync
from tenantdb.reconcile.sim_sync.names import shard_namespace
from tenantdb.store import MetadataStore, migrate_database
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


# -- the sync alone (no kopf): real PostgreSQL with Sim's schema, the Kubernetes emulator --------


@pytest.fixture
async def sync_stack(postgres_server: PostgresServer) -> AsyncIterator[SyncAlone]:
    async with LocalStack(postgres=postgres_server, sim_schema=True) as local:
        store = await MetadataStore.open(local.metadata_url, cipher=EncryptionKey(local.encryption_key))
        kube = await KubeClient.connect(host=local.kube_url)
        try:
            await store.migrate()
            yield SyncAlone(local, store, CustomResources(kube))
        finally:
            await kube.close()
            await store.close()


@dataclass
class SyncAlone:
    local: LocalStack
    store: MetadataStore
    resources: CustomResources
    metrics: Metrics = field(default_factory=Metrics)

    def sync(self, **settings: Any) -> SimSync:
        values = {"sim_sync": True, "sim_namespace": "default", **settings}
        return SimSync(
            settings=self.local.settings(**values),
            tables=self.store,
            resources=self.resources,
            post_event=_no_events,
            metrics=self.metrics,
        )

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


async def _no_events(
    kind: str, name: str, reason: str, message: str, *, namespace: str = "", type_: str = "Normal"
) -> None:
    return None


async def _register_at_once(sim: LocalStack, users: int) -> None:
    """``users`` registrations committed together (a bulk import, or the sync switched on late)."""
    await sim.metadata_query(
        'INSERT INTO "user" (id, name, email, created_at, updated_at) '
        "SELECT gen_random_uuid()::text, 'u' || i, 'u' || i || '@example.com', now(), now() "
        "FROM generate_series(1, %s) AS i RETURNING id",
        users,
    )


async def test_deletes_and_tier_changes_are_not_held_back_by_a_backlog_of_creates(
    sync_stack: SyncAlone,
) -> None:
    sim = sync_stack.local
    leaving = await sim.sim.register_user()
    paying = await sim.sim.register_user()
    sync = sync_stack.sync(sim_writes_per_second=5.0)
    loop = asyncio.create_task(sync.run_forever(is_active=lambda: True))
    try:
        await sim.wait_for("DatabaseBudget", f"user-{paying}", lambda o: o is not None, timeout=15)
        await sim.wait_for("DatabaseBudget", f"user-{leaving}", lambda o: o is not None, timeout=15)
        # 400 creates at 5 writes a second: 80 s of work, more than a pass's timeout.
        await _register_at_once(sim, 200)
        await asyncio.sleep(3)
        assert sync_stack.metric("tenantdb_sim_sync_backlog", action="create") > 300
        changed = time.monotonic()
        await sim.sim.delete_user(leaving)
        await sim.sim.subscribe(paying, "pro")
        await sim.wait_gone("GlobalDatabase", f"user-{leaving}", timeout=30)
        await sim.wait_gone("DatabaseBudget", f"user-{leaving}", timeout=5)
        await sim.wait_for(
            "DatabaseBudget", f"user-{paying}", lambda o: _spec(o).get("tier") == "paid", timeout=5
        )
        # One write slice (5 s) and a poll at most, not the 80 s of the whole backlog.
        assert time.monotonic() - changed < 10
        # And the backlog still goes down, as the metrics say.
        made = sync_stack.metric("tenantdb_sim_sync_resources", kind="GlobalDatabase")
        left = sync_stack.metric("tenantdb_sim_sync_backlog", action="create")
        await asyncio.sleep(3)
        assert sync_stack.metric("tenantdb_sim_sync_resources", kind="GlobalDatabase") > made
        assert sync_stack.metric("tenantdb_sim_sync_backlog", action="create") < left
        assert sync_stack.metric("tenantdb_sim_sync_writes_total", action="delete") == 2
        assert sync_stack.metric("tenantdb_sim_sync_writes_total", action="patch") == 1
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def test_rows_the_platform_had_before_become_resources_that_take_their_projects_over(
    sync_stack: SyncAlone,
) -> None:
    sim = sync_stack.local.sim
    adopted = await sim.register_user(name="Had a project")
    own = await sim.register_user(name="Brought their own")
    fresh = await sim.register_user(name="Nothing yet")
    workspace = await sim.create_workspace(adopted)
    await sim.provisioned_in_app(adopted, neon_project_id="cool-forest-86753099", database_name="app")
    await sim.provisioned_in_app(
        workspace, workspace=True, neon_project_id="shy-lake-12345678", database_name="agent-db"
    )
    await sim.provisioned_in_app(own, neon_project_id="their-own-1", ownership_type="user")

    sync = sync_stack.sync()
    while True:
        await sync.run_once()
        if not sync.backlog:
            break

    async def spec(plural: str, name: str) -> dict[str, Any] | None:
        obj = await sync_stack.resources.get(plural=plural, namespace="default", name=name)
        return None if obj is None else _spec(obj)

    assert await spec("globaldatabases", f"user-{adopted}") == {
        "userId": adopted,
        "projectId": "cool-forest-86753099",
        "databaseName": "app",
    }
    # 'agent-db' is no SQL name: the reconcile takes the project's own database.
    assert await spec("workspacedatabases", f"workspace-{workspace}") == {
        "userId": adopted,
        "workspaceId": workspace,
        "projectId": "shy-lake-12345678",
    }
    assert await spec("globaldatabases", f"user-{fresh}") == {"userId": fresh}
    assert await spec("globaldatabases", f"user-{own}") is None
    assert await spec("databasebudgets", f"user-{own}") == {"userId": own, "tier": "free"}
    assert sync_stack.metric("tenantdb_sim_sync_own_databases", kind="GlobalDatabase") == 1
    # Rows of Sim's and of the app's untouched.
    rows = await sync_stack.local.metadata_query(
        "SELECT user_id, ownership_type, neon_project_id FROM user_global_database ORDER BY user_id"
    )
    assert sorted(rows) == sorted(
        [(adopted, "platform", "cool-forest-86753099"), (own, "user", "their-own-1")]
    )


async def test_switched_on_over_in_app_rows_the_sync_takes_their_projects_over_end_to_end(
    postgres_server: PostgresServer,
) -> None:
    """The operator (kopf, the Neon emulator) switched on over the rows in-app provisioning left:
    the user's project is taken over, not created again; a user's own database is not touched."""
    overrides = {"sim_sync": True, "sim_namespace": "default", "resync_interval_seconds": 3600.0}
    async with LocalStack(postgres=postgres_server, sim_schema=True, settings_overrides=overrides) as local:
        assert local.neon is not None
        await migrate_database(local.metadata_url)
        key = EncryptionKey(local.encryption_key)
        async with httpx.AsyncClient(
            base_url=local.neon.base_url, headers={"Authorization": f"Bearer {local.neon.api_key}"}
        ) as neon:
            answer = await neon.post("/projects", json={"project": {"name": "made-by-the-app"}})
            answer.raise_for_status()
        project_id = answer.json()["project"]["id"]
        app_uri = answer.json()["connection_uris"][0]["connection_uri"]
        user = await local.sim.register_user(name="Had a project")
        own = await local.sim.register_user(name="Brought their own")
        await local.sim.provisioned_in_app(
            user, neon_project_id=project_id, connection_uri=key.encrypt(app_uri)
        )
        theirs = key.encrypt("postgresql://me:pw@db.example.com/mine")
        await local.sim.provisioned_in_app(
            own, neon_project_id="their-own-1", ownership_type="user", connection_uri=theirs
        )
        before = {p["id"] for p in local.neon.projects()}

        await local.start_operator()
        ready = await local.wait_ready("GlobalDatabase", f"user-{user}", timeout=60)
        assert ready["spec"]["projectId"] == project_id
        assert ready["status"]["projectId"] == project_id
        await local.wait_for("DatabaseBudget", f"user-{own}", lambda o: o is not None, timeout=15)
        assert {p["id"] for p in local.neon.projects()} == before, "no project was created"
        assert await local.get("GlobalDatabase", f"user-{own}") is None
        rows = await local.metadata_query(
            "SELECT ownership_type, neon_project_id, neon_connection_uri FROM user_global_database "
            "WHERE user_id = %s",
            own,
        )
        assert rows == [("user", "their-own-1", theirs)]
        await local.stop_operator()

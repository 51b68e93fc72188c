"""The Sim sync's decisions, from a snapshot of Sim's tables and a listing of the cluster."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tenantdb.api.crd import generate_crds
from tenantdb.config import Settings, Tier, parse_plan_tiers
from tenantdb.reconcile.sim_sync.backlog import Action, Backlog
from tenantdb.reconcile.sim_sync.desired import (
    PROJECT_ID,
    PROJECT_ID_MAX_LENGTH,
    DesiredResource,
    NotCreated,
    desired_resources,
    left_alone,
    tier_for_plan,
    with_tenant_row,
)
from tenantdb.reconcile.sim_sync.names import resource_name
from tenantdb.reconcile.sim_sync.plan import index_cluster, make_plan
from tenantdb.store import SimSnapshot, SimWorkspace, TenantRow

TIERS = parse_plan_tiers("free=free,pro=paid,team=paid,team_*=paid,enterprise=enterprise")
U1 = "0b6c9d3e-1f2a-4b5c-8d7e-9f0a1b2c3d4e"
U2 = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
W1 = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


def _obj(kind: str, name: str, spec: dict[str, Any], *, ours: bool = True) -> tuple[str, dict[str, Any]]:
    labels = {"tenantdb.io/managed-by": "sim-sync"} if ours else {}
    return kind, {"metadata": {"name": name, "labels": labels}, "spec": spec}


def test_plan_names_map_to_tiers_with_globs() -> None:
    assert tier_for_plan("team_25", TIERS) is Tier.PAID
    assert tier_for_plan("enterprise", TIERS) is Tier.ENTERPRISE
    assert tier_for_plan("business", TIERS) is None


def test_a_bad_plan_mapping_is_refused_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY", "ab" * 32)
    monkeypatch.setenv("TENANTDB_SIM_PLAN_TIERS", "pro=gold")
    with pytest.raises(ValidationError, match="unknown tier 'gold'"):
        Settings()


def test_each_user_gets_a_database_and_a_budget_and_each_live_workspace_a_database() -> None:
    snapshot = SimSnapshot(user_ids={U1, U2}, workspaces=[SimWorkspace(W1, U1, None)])
    desired = desired_resources(snapshot, plan_tiers=TIERS, default_tier=Tier.FREE, namespaces=["default"])
    assert {(r.kind, r.name) for r in desired.values()} == {
        ("GlobalDatabase", f"user-{U1}"),
        ("DatabaseBudget", f"user-{U1}"),
        ("GlobalDatabase", f"user-{U2}"),
        ("DatabaseBudget", f"user-{U2}"),
        ("WorkspaceDatabase", f"workspace-{W1}"),
    }
    assert desired[("WorkspaceDatabase", W1)].spec == {"userId": U1, "workspaceId": W1}


def test_the_tier_is_the_best_plan_of_the_user_or_of_an_organisation_they_are_a_member_of() -> None:
    snapshot = SimSnapshot(
        user_ids={U1, U2},
        workspaces=[SimWorkspace(W1, U2, "org-1")],
        subscriptions=[("pro", U2), ("enterprise", "org-1"), ("business", U1)],
        memberships=[(U1, "org-1")],
    )
    desired = desired_resources(snapshot, plan_tiers=TIERS, default_tier=Tier.FREE, namespaces=["default"])
    assert desired[("DatabaseBudget", U1)].spec["tier"] == "enterprise"
    # Owning a workspace of the organisation is not membership (Sim reads ``member`` only).
    assert desired[("DatabaseBudget", U2)].spec["tier"] == "paid"
    lonely = SimSnapshot(user_ids={U1}, subscriptions=[("business", U1)])
    assert (
        desired_resources(lonely, plan_tiers=TIERS, default_tier=Tier.PAID, namespaces=["default"])[
            ("DatabaseBudget", U1)
        ].spec["tier"]
        == "paid"
    )


def test_names_are_valid_kubernetes_names_for_any_id() -> None:
    assert resource_name("user", U1) == f"user-{U1}"
    odd = resource_name("user", "User_With_Caps")
    assert odd.startswith("user-")
    assert odd == odd.lower()
    assert len(odd) <= 63
    assert odd == resource_name("user", "User_With_Caps")


def test_the_plan_creates_patches_deletes_and_never_touches_what_is_not_ours() -> None:
    snapshot = SimSnapshot(user_ids={U1, U2}, workspaces=[], subscriptions=[("pro", U1)])
    desired = desired_resources(snapshot, plan_tiers=TIERS, default_tier=Tier.FREE, namespaces=["default"])
    cluster = index_cluster(
        [
            _obj("GlobalDatabase", f"user-{U1}", {"userId": U1}),
            _obj("DatabaseBudget", f"user-{U1}", {"userId": U1, "tier": "free"}),
            _obj("GlobalDatabase", "by-hand", {"userId": U2}, ours=False),
            _obj("WorkspaceDatabase", f"workspace-{W1}", {"userId": U1, "workspaceId": W1}),
            _obj("WorkspaceDatabase", "gitops", {"userId": U1, "workspaceId": "gone"}, ours=False),
        ]
    )
    plan = make_plan(desired, cluster, archived_workspace_ids={W1}, archived_deletion_policy="Retain")
    assert [(r.kind, r.name) for r in plan.create] == [("DatabaseBudget", f"user-{U2}")]
    assert [(r.name, patch) for r, patch in plan.patch] == [(f"user-{U1}", {"tier": "paid"})]
    assert [(r.name, policy) for r, policy in plan.delete] == [(f"workspace-{W1}", "Retain")]
    assert [r.name for r in plan.yielded] == ["by-hand"]


def test_creates_go_user_by_user_databases_first_then_the_budget() -> None:
    snapshot = SimSnapshot(user_ids={U2, U1}, workspaces=[SimWorkspace(W1, U1, None)])
    desired = desired_resources(snapshot, plan_tiers=TIERS, default_tier=Tier.FREE, namespaces=["default"])
    plan = make_plan(desired, {}, archived_workspace_ids=set(), archived_deletion_policy="Retain")
    assert [(r.kind, r.user_id) for r in plan.create] == [
        ("GlobalDatabase", U1),
        ("WorkspaceDatabase", U1),
        ("DatabaseBudget", U1),
        ("GlobalDatabase", U2),
        ("DatabaseBudget", U2),
    ]


def test_a_new_plan_keeps_the_order_of_creates_waiting_and_puts_new_ones_first() -> None:
    first = SimSnapshot(user_ids={U1, U2})
    desired = desired_resources(first, plan_tiers=TIERS, default_tier=Tier.FREE, namespaces=["default"])
    backlog = Backlog.from_plan(
        make_plan(desired, {}, archived_workspace_ids=set(), archived_deletion_policy="Retain")
    )
    backlog.creates.popleft()  # U1's database made
    made = index_cluster([_obj("GlobalDatabase", f"user-{U1}", {"userId": U1})])
    later = SimSnapshot(user_ids={U1, U2}, workspaces=[SimWorkspace(W1, U2, None)])
    desired = desired_resources(later, plan_tiers=TIERS, default_tier=Tier.FREE, namespaces=["default"])
    replanned = Backlog.from_plan(
        make_plan(desired, made, archived_workspace_ids=set(), archived_deletion_policy="Retain"),
        previous=backlog,
    )
    assert [(r.kind, r.sim_id) for r in replanned.creates] == [
        ("WorkspaceDatabase", W1),  # new: first
        ("DatabaseBudget", U1),
        ("GlobalDatabase", U2),
        ("DatabaseBudget", U2),
    ]
    assert replanned.writes_left() == {Action.DELETE: 0, Action.PATCH: 0, Action.CREATE: 4}


# -- the metadata rows: a user's own database, a project to take over ---------------------------


def test_a_users_own_database_gets_no_resource_made_or_deleted_but_the_user_a_budget() -> None:
    own = TenantRow("user", "theirs-1", "neondb")
    snapshot = SimSnapshot(
        user_ids={U1, U2},
        workspaces=[SimWorkspace(W1, U2, None)],
        user_database_rows={U1: own, "gone-user": own, U2: TenantRow("platform", "", "neondb")},
        workspace_database_rows={W1: own},
    )
    desired = desired_resources(snapshot, plan_tiers=TIERS, default_tier=Tier.FREE, namespaces=["default"])
    assert set(desired) == {("DatabaseBudget", U1), ("GlobalDatabase", U2), ("DatabaseBudget", U2)}
    # A platform row naming no project: a new one, as with no row.
    assert desired[("GlobalDatabase", U2)].spec == {"userId": U2}
    alone = left_alone(snapshot)
    assert alone == {
        ("GlobalDatabase", U1): NotCreated.OWN_DATABASE,
        ("WorkspaceDatabase", W1): NotCreated.OWN_DATABASE,
    }
    # Resources of ours from before: left alone while Sim has the tenant, deleted once it is gone.
    cluster = index_cluster(
        [
            _obj("GlobalDatabase", f"user-{U1}", {"userId": U1}),
            _obj("WorkspaceDatabase", f"workspace-{W1}", {"userId": U2, "workspaceId": W1}),
            _obj("GlobalDatabase", "user-gone-user", {"userId": "gone-user"}),
        ]
    )
    plan = make_plan(
        desired, cluster, archived_workspace_ids=set(), archived_deletion_policy="Retain", leave_alone=alone
    )
    assert [r.name for r, _ in plan.delete] == ["user-gone-user"]
    assert {(r.kind, r.sim_id) for r in plan.create} == {
        ("DatabaseBudget", U1),
        ("GlobalDatabase", U2),
        ("DatabaseBudget", U2),
    }


def test_a_project_id_is_only_ever_created_never_patched_onto_a_resource() -> None:
    snapshot = SimSnapshot(
        user_ids={U1, U2}, user_database_rows={U1: TenantRow("platform", "cool-forest-1", "neondb")}
    )
    desired = desired_resources(snapshot, plan_tiers=TIERS, default_tier=Tier.FREE, namespaces=["default"])
    cluster = index_cluster(
        [
            _obj("GlobalDatabase", f"user-{U1}", {"userId": U1}),
            _obj("DatabaseBudget", f"user-{U1}", {"userId": U1, "tier": "free"}),
        ]
    )
    plan = make_plan(desired, cluster, archived_workspace_ids=set(), archived_deletion_policy="Retain")
    assert plan.patch == []
    assert [r.spec for r in plan.create if r.kind == "GlobalDatabase"] == [{"userId": U2}]


def _want(kind: str = "GlobalDatabase") -> DesiredResource:
    """What the sync wants for ``U1`` (and its workspace ``W1``) when no row says anything."""
    snapshot = SimSnapshot(user_ids={U1}, workspaces=[SimWorkspace(W1, U1, None)])
    desired = desired_resources(snapshot, plan_tiers=TIERS, default_tier=Tier.FREE, namespaces=["default"])
    return desired[(kind, W1 if kind == "WorkspaceDatabase" else U1)]


def test_a_platform_row_names_the_project_to_take_over_and_its_database() -> None:
    row = TenantRow("platform", "cool-forest-86753099", "agent_db")
    adopted = with_tenant_row(_want(), row)
    assert isinstance(adopted, DesiredResource)
    assert adopted.spec == {"userId": U1, "projectId": "cool-forest-86753099", "databaseName": "agent_db"}
    workspace = with_tenant_row(_want("WorkspaceDatabase"), row)
    assert isinstance(workspace, DesiredResource)
    assert workspace.spec == {
        "userId": U1,
        "workspaceId": W1,
        "projectId": "cool-forest-86753099",
        "databaseName": "agent_db",
    }
    # No row: a new project; a budget has no row to read.
    assert with_tenant_row(_want(), None) == _want()
    assert with_tenant_row(_want("DatabaseBudget"), row) == _want("DatabaseBudget")


@pytest.mark.parametrize("name", ["my-db", "1db", "", "x" * 58, "naïve"])
def test_a_database_name_the_crd_would_refuse_is_left_to_the_project(name: str) -> None:
    adopted = with_tenant_row(_want(), TenantRow("platform", "cool-forest-86753099", name))
    assert isinstance(adopted, DesiredResource)
    assert adopted.spec == {"userId": U1, "projectId": "cool-forest-86753099"}


def test_a_longest_database_name_that_leaves_room_for_its_role_is_kept() -> None:
    adopted = with_tenant_row(_want(), TenantRow("platform", "cool-forest-86753099", "d" * 57))
    assert isinstance(adopted, DesiredResource)
    assert adopted.spec["databaseName"] == "d" * 57


@pytest.mark.parametrize("ownership", ["user", "byo", "Platform", ""])
def test_a_row_not_the_platforms_is_the_users_own_database(ownership: str) -> None:
    assert with_tenant_row(_want(), TenantRow(ownership, "cool-forest-86753099", "neondb")) is (
        NotCreated.OWN_DATABASE
    )


@pytest.mark.parametrize("project_id", ["Cool-Forest", "-forest", "a/b", "p" * 65])
def test_a_platform_row_whose_project_id_the_crd_would_refuse_makes_nothing(project_id: str) -> None:
    assert with_tenant_row(_want(), TenantRow("platform", project_id, "neondb")) is NotCreated.BAD_PROJECT_ID
    snapshot = SimSnapshot(user_ids={U1}, user_database_rows={U1: TenantRow("platform", project_id, "x")})
    assert left_alone(snapshot) == {("GlobalDatabase", U1): NotCreated.BAD_PROJECT_ID}


@pytest.mark.parametrize("kind", ["GlobalDatabase", "WorkspaceDatabase"])
def test_the_project_id_the_sync_accepts_is_the_one_the_crd_accepts(kind: str) -> None:
    crd = next(c for c in generate_crds() if c["spec"]["names"]["kind"] == kind)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["projectId"]["pattern"] == PROJECT_ID.pattern
    assert spec["projectId"]["maxLength"] == PROJECT_ID_MAX_LENGTH


def test_a_snapshot_with_rows_wants_each_database_to_take_its_project_over() -> None:
    snapshot = SimSnapshot(
        user_ids={U1, U2},
        workspaces=[SimWorkspace(W1, U1, None)],
        user_database_rows={U1: TenantRow("platform", "cool-forest-1", "app")},
        workspace_database_rows={W1: TenantRow("platform", "shy-lake-2", "neondb")},
    )
    desired = desired_resources(snapshot, plan_tiers=TIERS, default_tier=Tier.FREE, namespaces=["default"])
    assert desired[("GlobalDatabase", U1)].spec == {
        "userId": U1,
        "projectId": "cool-forest-1",
        "databaseName": "app",
    }
    assert desired[("WorkspaceDatabase", W1)].spec == {
        "userId": U1,
        "workspaceId": W1,
        "projectId": "shy-lake-2",
        "databaseName": "neondb",
    }
    assert desired[("GlobalDatabase", U2)].spec == {"userId": U2}
    assert desired[("DatabaseBudget", U1)].spec == {"userId": U1, "tier": "free"}
    assert left_alone(snapshot) == {}

"""The Sim sync's decisions, from a snapshot of Sim's tables and a listing of the cluster."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tenantdb.config import Settings, Tier, parse_plan_tiers
from tenantdb.reconcile.sim_sync.desired import desired_resources, tier_for_plan
from tenantdb.reconcile.sim_sync.names import resource_name
from tenantdb.reconcile.sim_sync.plan import index_cluster, make_plan
from tenantdb.store import SimSnapshot, SimWorkspace

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

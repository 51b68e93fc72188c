"""Sim's billing read as Sim reads it (``reconcile.sim_sync.subscriptions``), checked against
Sim's plan-helpers.ts, subscriptions/utils.ts and core/plan.ts at 0b232eb8 (v0.8.9): each of
Sim's plans lands on its tier, whether the user or their organisation holds it; a plan no
tier claims gets the default tier and is told, once per user and plan."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import pytest

from tenantdb.config import DEFAULT_SIM_PLAN_TIERS, Settings, parse_plan_tiers
from tenantdb.metrics import Metrics
from tenantdb.reconcile.sim_sync import SimSync
from tenantdb.reconcile.sim_sync.bucket import TokenBucket
from tenantdb.reconcile.sim_sync.desired import desired_resources
from tenantdb.reconcile.sim_sync.plan import index_cluster, make_plan
from tenantdb.reconcile.sim_sync.subscriptions import (
    SIM_BILLING_CHECKED_AGAINST,
    UserPlan,
    plan_tiers_from_objects,
    tier_for_plan,
    user_plan,
    user_plans,
)
from tenantdb.reconcile.sim_sync.unclaimed import UnclaimedPlans
from tenantdb.store import SimSnapshot, SimWorkspace
from tests.unit.test_sim_sync_loop import Resources, Tables

DEFAULT = parse_plan_tiers(DEFAULT_SIM_PLAN_TIERS)
# Pro and Max as tiers of their own: tier names are plain strings.
PRO_AND_MAX = {
    "free": "hobby",
    "pro_25000": "max",
    "team_25000": "max",
    "pro": "pro",
    "pro_*": "pro",
    "team": "pro",
    "team_*": "pro",
    "enterprise": "enterprise",
}
ADA, BOB = "ada", "bob"
ORG = "org-1"


def _tier(
    plans: list[tuple[str, str]],
    *,
    memberships: tuple[tuple[str, str], ...] = (),
    tiers: Mapping[str, str] = DEFAULT,
) -> str:
    snapshot = SimSnapshot(user_ids={ADA}, subscriptions=plans, memberships=list(memberships))
    return user_plans(snapshot, tiers, "free")[ADA].tier


def test_the_mapping_says_which_sim_it_was_checked_against() -> None:
    assert SIM_BILLING_CHECKED_AGAINST.startswith("simstudioai/sim@0b232eb8")


# Every plan name Sim's plan-helpers.ts knows at that commit, current and legacy.
@pytest.mark.parametrize(
    ("plan", "default_tier", "pro_and_max_tier"),
    [
        ("free", "free", "hobby"),
        ("pro_6000", "paid", "pro"),  # Pro
        ("pro_25000", "paid", "max"),  # Max
        ("team_6000", "paid", "pro"),  # Pro for Teams
        ("team_25000", "paid", "max"),  # Max for Teams
        ("enterprise", "enterprise", "enterprise"),
        ("pro", "paid", "pro"),  # legacy Pro ($20)
        ("team", "paid", "pro"),  # legacy Team ($40)
        ("team_5", "paid", "pro"),  # an older per-seat team name
    ],
)
def test_every_sim_plan_is_claimed_by_the_default_mapping(
    plan: str, default_tier: str, pro_and_max_tier: str
) -> None:
    assert tier_for_plan(plan, DEFAULT) == default_tier
    assert tier_for_plan(plan, PRO_AND_MAX) == pro_and_max_tier


@pytest.mark.parametrize("plan", ["pro_6000", "pro_25000", "pro", "enterprise", "team_6000"])
def test_a_personal_subscription_in_force_gives_its_tier(plan: str) -> None:
    assert _tier([(plan, ADA)]) == tier_for_plan(plan, DEFAULT)
    assert _tier([(plan, ADA)], tiers=PRO_AND_MAX) == tier_for_plan(plan, PRO_AND_MAX)


@pytest.mark.parametrize("plan", ["team_6000", "team_25000", "team", "enterprise"])
def test_an_organisations_plan_reaches_each_member(plan: str) -> None:
    member = ((ADA, ORG),)
    assert _tier([(plan, ORG)], memberships=member, tiers=PRO_AND_MAX) == tier_for_plan(plan, PRO_AND_MAX)
    # Not a member: the organisation's plan is not the user's (owning one of its workspaces
    # does not make it so either: Sim reads members only).
    snapshot = SimSnapshot(
        user_ids={ADA}, workspaces=[SimWorkspace("w", ADA, ORG)], subscriptions=[(plan, ORG)]
    )
    assert user_plans(snapshot, DEFAULT, "free")[ADA] == UserPlan(None, "free")


def test_no_subscription_in_force_is_sims_free_plan_without_a_warning() -> None:
    assert user_plans(SimSnapshot(user_ids={ADA}), DEFAULT, "free")[ADA] == UserPlan(None, "free")
    # A mapping that claims no "free": the default tier, which is what it is for; nothing to tell.
    assert user_plans(SimSnapshot(user_ids={ADA}), {"pro_*": "paid"}, "basic")[ADA] == UserPlan(None, "basic")


@pytest.mark.parametrize(
    ("own", "organisation", "expected"),
    [
        # Sim's order: Enterprise over Team over Pro, whatever the credits.
        (["pro_25000"], ["team_6000"], "team_6000"),
        (["enterprise"], ["team_25000"], "enterprise"),
        (["team_6000"], ["enterprise"], "enterprise"),
        # Same rank: the organisation's over the user's own (a personal plan running out).
        (["team_25000"], ["team_6000"], "team_6000"),
        # Same rank and scope (Sim leaves it to row order): the larger credit tier.
        (["pro", "pro_25000", "pro_6000"], [], "pro_25000"),
        (["team"], [], "team"),
        # Sim's free plan is no plan; nothing at all is None.
        (["free"], [], None),
        ([], [], None),
    ],
)
def test_the_plan_is_picked_as_sims_get_highest_priority_subscription_does(
    own: list[str], organisation: list[str], expected: str | None
) -> None:
    assert user_plan(own=own, organisations=organisation) == expected


def test_a_plan_no_tier_claims_gets_the_default_tier_and_is_marked_unclaimed() -> None:
    snapshot = SimSnapshot(
        user_ids={ADA, BOB}, subscriptions=[("business_50000", ADA), ("business_50000", BOB)]
    )
    snapshot.subscriptions.append(("pro_6000", BOB))
    plans = user_plans(snapshot, DEFAULT, "free")
    assert plans[ADA] == UserPlan("business_50000", "free", claimed=False)
    assert plans[BOB] == UserPlan("pro_6000", "paid")  # a plan Sim knows ranks above one it does not
    # Claimed by a tier (say a DatabaseTier's simPlans): no longer unclaimed.
    claimed = user_plans(snapshot, {**DEFAULT, "business_*": "enterprise"}, "free")
    assert claimed[ADA] == UserPlan("business_50000", "enterprise")


def test_tier_objects_become_a_mapping_most_specific_pattern_first() -> None:
    mapping = plan_tiers_from_objects(
        [
            ("pro", ["pro", "pro_*", "team_*"]),
            ("max", ["pro_25000", "*_25000"]),
            ("enterprise", ["enterprise"]),
        ]
    )
    assert tier_for_plan("pro_25000", mapping) == "max"
    assert tier_for_plan("team_25000", mapping) == "max"  # "*_25000" is longer than "team_*"
    assert tier_for_plan("team_6000", mapping) == "pro"
    assert tier_for_plan("enterprise", mapping) == "enterprise"
    assert tier_for_plan("free", mapping) is None
    # A pattern two tiers claim: the first tier by name, whatever the order objects are listed in.
    assert plan_tiers_from_objects([("b", ["pro_*"]), ("a", ["pro_*"])]) == {"pro_*": "a"}


# --- who pays for a workspace -----------------------------------------------------------------------
def _workspace_spec(workspace: SimWorkspace) -> dict[str, Any]:
    snapshot = SimSnapshot(user_ids={ADA, BOB}, workspaces=[workspace])
    return dict(
        desired_resources(snapshot, plan_tiers=DEFAULT, default_tier="free", namespaces=["default"])[
            ("WorkspaceDatabase", "w")
        ].spec
    )


def test_a_workspace_database_counts_against_whom_sim_bills() -> None:
    assert _workspace_spec(SimWorkspace("w", ADA, None, ADA)) == {"userId": ADA, "workspaceId": "w"}
    assert _workspace_spec(SimWorkspace("w", ADA, None, None)) == {"userId": ADA, "workspaceId": "w"}
    assert _workspace_spec(SimWorkspace("w", ADA, ORG, BOB)) == {
        "userId": ADA,
        "workspaceId": "w",
        "billedUserId": BOB,
    }


@pytest.mark.parametrize(
    ("have", "workspace", "patch"),
    [
        # Made before billedUserId existed, owner pays: nothing to write (no patch per workspace).
        ({"userId": ADA}, SimWorkspace("w", ADA, None, ADA), None),
        # Sim bills someone else: the database follows.
        ({"userId": ADA}, SimWorkspace("w", ADA, None, BOB), {"billedUserId": BOB}),
        # The owner left: Sim moved owner and payer to Bob; userId stays Ada (immutable).
        ({"userId": ADA}, SimWorkspace("w", BOB, None, BOB), {"billedUserId": BOB}),
        ({"userId": ADA, "billedUserId": BOB}, SimWorkspace("w", BOB, None, BOB), None),
        # Back to the first owner.
        ({"userId": ADA, "billedUserId": BOB}, SimWorkspace("w", ADA, None, ADA), {"billedUserId": ADA}),
    ],
)
def test_the_sync_patches_the_payer_only_when_it_changed(
    have: dict[str, Any], workspace: SimWorkspace, patch: dict[str, Any] | None
) -> None:
    desired = desired_resources(
        SimSnapshot(user_ids={ADA, BOB}, workspaces=[workspace]),
        plan_tiers=DEFAULT,
        default_tier="free",
        namespaces=["default"],
    )
    labels = {"tenantdb.io/managed-by": "sim-sync"}
    obj = {"metadata": {"name": "workspace-w", "labels": labels}, "spec": {**have, "workspaceId": "w"}}
    plan = make_plan(
        {k: v for k, v in desired.items() if k[0] == "WorkspaceDatabase"},
        index_cluster([("WorkspaceDatabase", obj)]),
        archived_workspace_ids=set(),
        archived_deletion_policy="Retain",
    )
    assert [p for _, p in plan.patch] == ([patch] if patch else [])
    assert not plan.create
    assert not plan.delete


# --- never silent --------------------------------------------------------------------------------
class Posted:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    async def __call__(
        self, kind: str, name: str, reason: str, message: str, *, namespace: str = "", type_: str = "Normal"
    ) -> None:
        self.events.append((type_, name, reason, message))


async def test_a_plan_no_tier_claims_is_told_once_per_user_and_plan_and_counted() -> None:
    metrics, posted = Metrics(), Posted()
    unclaimed = UnclaimedPlans(metrics, posted, TokenBucket(1000.0).take)

    async def a_pass(plans: list[tuple[str, str]]) -> None:
        snapshot = SimSnapshot(user_ids={ADA, BOB}, subscriptions=plans)
        desired = desired_resources(snapshot, plan_tiers=DEFAULT, default_tier="free", namespaces=["default"])
        await unclaimed.tell(desired.values(), complete=True)

    def gauge() -> float | None:
        return metrics.registry.get_sample_value("tenantdb_sim_unclaimed_plan_users")

    await a_pass([("business_50000", ADA), ("pro_6000", BOB)])
    await a_pass([("business_50000", ADA), ("pro_6000", BOB)])  # the next pass: nothing new to tell
    assert [(t, n, r) for t, n, r, _ in posted.events] == [("Warning", f"user-{ADA}", "UnclaimedSimPlan")]
    assert "'business_50000'" in posted.events[0][3]
    assert "'free'" in posted.events[0][3]
    assert gauge() == 1
    await a_pass([("scale_100000", ADA)])  # another plan nobody claims: told again
    assert len(posted.events) == 2
    await a_pass([("pro_6000", ADA)])  # claimed now: forgotten, and counted no more
    assert gauge() == 0
    await a_pass([("scale_100000", ADA)])  # back on it: a new occurrence
    assert len(posted.events) == 3


async def test_the_sync_takes_the_mapping_from_the_tier_source_it_is_given() -> None:
    """Tier objects, when there are any, give the mapping; the setting is the fallback."""
    tables, resources = Tables(), Resources()
    tables.users[ADA] = datetime.datetime(2026, 1, 1)
    settings = Settings(encryption_key="ab" * 32, sim_sync=True)
    mapping = {"free": "hobby"}
    sync = SimSync(
        settings=settings, tables=tables, resources=resources, post_event=Posted(), plan_tiers=lambda: mapping
    )
    await sync.run_once()
    assert resources.objects[("databasebudgets", f"user-{ADA}")]["spec"]["tier"] == "hobby"

"""Budget enforcement across users: outcomes for status and the suspend/resume actions."""

from __future__ import annotations

from tenantdb.api import BudgetDatabase
from tenantdb.billing import TierDefinition, TierPolicy
from tenantdb.config import Tier
from tenantdb.reconcile.enforcement import (
    BudgetRecord,
    DatabaseRecord,
    ResumeAction,
    SuspendAction,
    plan_enforcement,
)


def db(
    name: str,
    user: str,
    project: str | None,
    *,
    kind: str = "WorkspaceDatabase",
    suspended: bool = False,
    namespace: str = "tenants",
) -> DatabaseRecord:
    endpoint = None if project is None else f"ep-{project}"
    return DatabaseRecord(kind, namespace, name, user, project, endpoint, suspended)


def suspend_of(record: DatabaseRecord) -> SuspendAction:
    assert record.project_id is not None
    return SuspendAction(
        record.kind, record.namespace, record.name, record.user_id, record.project_id, record.endpoint_id
    )


def resume_of(record: DatabaseRecord) -> ResumeAction:
    assert record.project_id is not None
    return ResumeAction(
        record.kind, record.namespace, record.name, record.user_id, record.project_id, record.endpoint_id
    )


ALICE_GLOBAL = db("alice", "alice", "p-alice-g", kind="GlobalDatabase")
ALICE_WS = db("alice-ws1", "alice", "p-alice-w")
BOB_GLOBAL = db("bob", "bob", "p-bob-g", kind="GlobalDatabase")


def test_a_user_over_the_limit_has_all_their_databases_suspended(policy: TierPolicy) -> None:
    plan = plan_enforcement(
        budgets=[BudgetRecord("alice", Tier.FREE), BudgetRecord("bob", Tier.FREE)],
        databases=[ALICE_GLOBAL, ALICE_WS, BOB_GLOBAL],
        costs_cents={"p-alice-g": 450, "p-alice-w": 60, "p-bob-g": 499},
        policy=policy,
    )
    assert plan.suspend == (suspend_of(ALICE_GLOBAL), suspend_of(ALICE_WS))
    assert plan.resume == ()
    alice, bob = plan.outcomes["alice"], plan.outcomes["bob"]
    assert (alice.total_cost_cents, alice.limit_cents, alice.exceeded) == (510, 500, True)
    assert (bob.total_cost_cents, bob.exceeded) == (499, False)


def test_status_databases_list_each_database_with_its_cost(policy: TierPolicy) -> None:
    plan = plan_enforcement(
        budgets=[BudgetRecord("alice", Tier.PAID)],
        databases=[ALICE_WS, ALICE_GLOBAL],
        costs_cents={"p-alice-g": 450, "p-alice-w": 60},
        policy=policy,
    )
    entries = plan.outcomes["alice"].databases
    # They add up to the total, and they are what DatabaseBudget.status.databases accepts.
    assert sum(entry["costCents"] for entry in entries) == plan.outcomes["alice"].total_cost_cents
    assert [BudgetDatabase.model_validate(entry).to_wire() for entry in entries] == list(entries)
    assert entries == (
        {"kind": "GlobalDatabase", "name": "alice", "projectId": "p-alice-g", "costCents": 450},
        {"kind": "WorkspaceDatabase", "name": "alice-ws1", "projectId": "p-alice-w", "costCents": 60},
    )


def test_an_upgrade_resumes_what_the_budget_suspended(policy: TierPolicy) -> None:
    suspended = [db("alice", "alice", "p-alice-g", kind="GlobalDatabase", suspended=True)]
    plan = plan_enforcement(
        budgets=[BudgetRecord("alice", Tier.PAID)],
        databases=suspended,
        costs_cents={"p-alice-g": 600},
        policy=policy,
    )
    assert plan.resume == (resume_of(suspended[0]),)
    assert plan.suspend == ()
    assert (plan.outcomes["alice"].tier, plan.outcomes["alice"].exceeded) == (Tier.PAID, False)


def test_a_new_period_resumes_once_its_costs_are_known(policy: TierPolicy) -> None:
    suspended = [
        db("alice", "alice", "p-alice-g", suspended=True),
        db("ws", "alice", "p-alice-w", suspended=True),
    ]
    budgets = [BudgetRecord("alice", Tier.FREE)]
    # First sync of April: one project not reported yet -> hold.
    held = plan_enforcement(budgets=budgets, databases=suspended, costs_cents={"p-alice-g": 1}, policy=policy)
    assert held.resume == ()
    assert not held.outcomes["alice"].costs_complete
    # Next sync: both known and small -> resume both.
    plan = plan_enforcement(
        budgets=budgets, databases=suspended, costs_cents={"p-alice-g": 1, "p-alice-w": 0}, policy=policy
    )
    assert plan.resume == tuple(resume_of(record) for record in suspended)


def test_a_user_without_a_budget_gets_the_default_tier(policy: TierPolicy) -> None:
    plan = plan_enforcement(budgets=[], databases=[BOB_GLOBAL], costs_cents={"p-bob-g": 500}, policy=policy)
    bob = plan.outcomes["bob"]
    assert (bob.has_budget, bob.tier, bob.limit_cents, bob.exceeded) == (False, Tier.FREE, 500, True)
    assert plan.suspend == (suspend_of(BOB_GLOBAL),)


def test_a_budget_without_databases_has_an_outcome(policy: TierPolicy) -> None:
    plan = plan_enforcement(
        budgets=[BudgetRecord("carol", Tier.PAID, custom_limit_cents=100)],
        databases=[],
        costs_cents={},
        policy=policy,
    )
    carol = plan.outcomes["carol"]
    assert (carol.has_budget, carol.limit_cents, carol.total_cost_cents, carol.databases) == (
        True,
        100,
        0,
        (),
    )


def test_an_unknown_cost_is_left_out_of_status_and_holds_back_resuming(policy: TierPolicy) -> None:
    suspended = db("alice", "alice", "p-alice-g", suspended=True)
    plan = plan_enforcement(
        budgets=[BudgetRecord("alice", Tier.PAID)], databases=[suspended], costs_cents={}, policy=policy
    )
    alice = plan.outcomes["alice"]
    assert alice.databases == ({"kind": "WorkspaceDatabase", "name": "alice", "projectId": "p-alice-g"},)
    assert (alice.total_cost_cents, alice.costs_complete, alice.exceeded) == (0, False, False)
    assert plan.resume == ()


def test_a_database_without_a_project_costs_nothing_and_gets_no_action(policy: TierPolicy) -> None:
    new = db("alice-new", "alice", None)
    plan = plan_enforcement(
        budgets=[BudgetRecord("alice", Tier.FREE, custom_limit_cents=0)],
        databases=[new, ALICE_GLOBAL],
        costs_cents={"p-alice-g": 0},
        policy=policy,
    )
    alice = plan.outcomes["alice"]
    assert alice.exceeded  # a zero limit
    assert alice.costs_complete
    assert {"kind": "WorkspaceDatabase", "name": "alice-new", "costCents": 0} in alice.databases
    assert plan.suspend == (suspend_of(ALICE_GLOBAL),)


def test_the_strictest_of_duplicate_budgets_applies(policy: TierPolicy) -> None:
    for budgets in (
        [BudgetRecord("alice", Tier.ENTERPRISE), BudgetRecord("alice", Tier.PAID, custom_limit_cents=300)],
        [BudgetRecord("alice", Tier.PAID, custom_limit_cents=300), BudgetRecord("alice", Tier.ENTERPRISE)],
    ):
        plan = plan_enforcement(
            budgets=budgets, databases=[ALICE_GLOBAL], costs_cents={"p-alice-g": 400}, policy=policy
        )
        assert plan.outcomes["alice"].limit_cents == 300
        assert plan.suspend == (suspend_of(ALICE_GLOBAL),)


def test_unlimited_users_are_never_suspended(policy: TierPolicy) -> None:
    plan = plan_enforcement(
        budgets=[BudgetRecord("alice", Tier.ENTERPRISE)],
        databases=[ALICE_GLOBAL],
        costs_cents={"p-alice-g": 10**9},
        policy=policy,
    )
    assert plan.suspend == ()
    assert plan.outcomes["alice"].limit_cents is None


def test_the_plan_does_not_depend_on_input_order(policy: TierPolicy) -> None:
    databases = [ALICE_GLOBAL, ALICE_WS, BOB_GLOBAL, db("bob-ws", "bob", "p-bob-w", namespace="a")]
    costs = {"p-alice-g": 450, "p-alice-w": 60, "p-bob-g": 300, "p-bob-w": 300}
    budgets = [BudgetRecord("bob", Tier.FREE), BudgetRecord("alice", Tier.FREE)]
    forward = plan_enforcement(budgets=budgets, databases=databases, costs_cents=costs, policy=policy)
    backward = plan_enforcement(
        budgets=budgets[::-1], databases=databases[::-1], costs_cents=costs, policy=policy
    )
    assert forward == backward
    assert list(forward.outcomes) == ["alice", "bob"]


def test_suspended_databases_are_not_suspended_again(policy: TierPolicy) -> None:
    already = db("alice", "alice", "p-alice-g", suspended=True)
    plan = plan_enforcement(
        budgets=[BudgetRecord("alice", Tier.FREE)],
        databases=[already, ALICE_WS],
        costs_cents={"p-alice-g": 900, "p-alice-w": 0},
        policy=policy,
    )
    assert plan.suspend == (suspend_of(ALICE_WS),)


def test_a_budget_naming_a_tier_that_does_not_exist_decides_nothing(policy: TierPolicy) -> None:
    suspended = db("alice", "alice", "p-a", suspended=True)
    plan = plan_enforcement(
        budgets=[BudgetRecord("alice", "gold"), BudgetRecord("bob", "gold", custom_limit_cents=0)],
        databases=[suspended, BOB_GLOBAL],
        costs_cents={"p-a": 0, "p-bob-g": 10_000},
        policy=policy,
    )
    assert (plan.suspend, plan.resume) == ((), ())  # not resumed, not suspended
    alice = plan.outcomes["alice"]
    assert (alice.tier, alice.tier_found, alice.limit_cents) == ("gold", False, None)
    assert plan.outcomes["bob"].tier_found is False  # a limit of its own does not decide it either


def test_a_tiers_compute_quota_is_carried_to_the_hard_stop() -> None:
    capped = TierPolicy(
        default_tier="free",
        tiers={"free": TierDefinition(name="free", limit_cents=500, quotas={"compute_time_seconds": 3600})},
    )
    plan = plan_enforcement(
        budgets=[BudgetRecord("alice", "free")], databases=[], costs_cents={}, policy=capped
    )
    assert plan.outcomes["alice"].compute_cap_seconds == 3600

"""What a database's settings on Neon are, given its spec and its user's tier; the tiers the
operator holds. Pure: no Neon, no Kubernetes."""

from __future__ import annotations

import pytest

from tenantdb.api import AutoscalingSpec
from tenantdb.api.tier import DatabaseTierSpec
from tenantdb.billing import Budget, TierDefinition
from tenantdb.config import Settings
from tenantdb.reconcile.tiers import (
    OwnCompute,
    SettingsWanted,
    TierCatalog,
    definition_of,
    desired_settings,
    project_changes,
    tier_definition,
)

KEY = "ab" * 32
PRO = TierDefinition(
    name="pro",
    limit_cents=5000,
    min_cu=0.25,
    max_cu=2.0,
    suspend_timeout_seconds=600,
    history_retention_seconds=604800,
    quotas={"logical_size_bytes": 10 * 1024**3, "compute_time_seconds": 360_000},
)
NONE = OwnCompute()


def test_a_spec_that_names_no_compute_takes_the_tiers() -> None:
    wanted = desired_settings(NONE, PRO)
    assert (wanted.tier, wanted.min_cu, wanted.max_cu, wanted.suspend_timeout_seconds) == (
        "pro",
        0.25,
        2.0,
        600,
    )
    assert wanted.history_retention_seconds == 604800
    # The compute quota is the budget loop's to set (lowered to the tier's there), never here.
    assert dict(wanted.quotas) == {"logical_size_bytes": 10 * 1024**3}


def test_what_the_spec_names_wins_over_the_tier() -> None:
    own = OwnCompute.of(AutoscalingSpec(minCu=0.5, maxCu=1), 300)
    wanted = desired_settings(own, PRO)
    assert wanted.compute == (0.5, 1.0, 300)
    assert wanted.history_retention_seconds == 604800  # what a spec cannot say still follows the tier


def test_neither_spec_nor_tier_gives_what_every_database_had_before_tiers() -> None:
    wanted = desired_settings(NONE, TierDefinition(name="free", limit_cents=500))
    assert wanted == SettingsWanted(
        tier="free", min_cu=0.25, max_cu=0.25, suspend_timeout_seconds=0, history_retention_seconds=None
    )


def test_a_tier_that_does_not_exist_holds_what_was_applied() -> None:
    applied = desired_settings(NONE, PRO)
    assert desired_settings(NONE, None, held=applied) == applied
    # ... and a new database of such a user gets the base, with no tier to follow.
    assert desired_settings(NONE, None).compute == (0.25, 0.25, 0)
    assert desired_settings(NONE, None).tier is None


def test_only_project_settings_that_differ_are_sent_and_a_quota_no_longer_named_is_lifted() -> None:
    applied = desired_settings(NONE, PRO)
    assert project_changes(applied, applied) == (None, {})
    smaller = desired_settings(NONE, TierDefinition(name="pro", history_retention_seconds=86400))
    retention, quotas = project_changes(smaller, applied)
    assert retention == 86400
    assert quotas == {"logical_size_bytes": 0}  # 0: Neon's "no quota"
    # A retention the tier no longer names is left as it is (Neon's own, or the last one set).
    assert project_changes(desired_settings(NONE, TierDefinition(name="free")), applied) == (
        None,
        {"logical_size_bytes": 0},
    )
    # A database recorded before tiers set anything: what the tier gives is all news.
    assert project_changes(applied, None) == (604800, {"logical_size_bytes": 10 * 1024**3})


def test_the_applied_record_round_trips_through_the_status() -> None:
    wanted = desired_settings(NONE, PRO)
    assert SettingsWanted.from_status(wanted.to_status()) == wanted
    assert SettingsWanted.from_status(None) is None


def test_a_tier_object_as_the_rules_read_it() -> None:
    spec = DatabaseTierSpec.model_validate(
        {
            "limitCents": 5000,
            "autoscaling": {"minCu": 0.25, "maxCu": 2},
            "quotas": {"logicalSizeBytes": 1000},
            "simPlans": ["pro", "team_*"],
        }
    )
    definition = definition_of("pro", spec, generation=3)
    assert (definition.limit_cents, definition.min_cu, definition.max_cu) == (5000, 0.25, 2.0)
    assert dict(definition.quotas) == {"logical_size_bytes": 1000}
    assert (definition.sim_plans, definition.generation) == (("pro", "team_*"), 3)
    unlimited = definition_of("enterprise", DatabaseTierSpec())
    assert (unlimited.limit_cents, unlimited.min_cu, unlimited.suspend_timeout_seconds) == (None, None, None)


def test_a_tier_object_whose_spec_does_not_validate_is_left_out() -> None:
    good = {"metadata": {"name": "pro", "generation": 2}, "spec": {"limitCents": 1}}
    assert tier_definition(good) == TierDefinition(name="pro", limit_cents=1, generation=2)
    assert tier_definition({"metadata": {"name": "bad"}, "spec": {"suspendTimeoutSeconds": 30}}) is None


def test_the_catalog_is_the_settings_three_until_an_object_exists_then_only_the_objects() -> None:
    catalog = TierCatalog(Settings(encryption_key=KEY))
    assert set(catalog.policy.tiers) == {"free", "paid", "enterprise"}
    assert catalog.policy.limit_cents(Budget("paid")) == 5000
    catalog.put(PRO)
    assert set(catalog.policy.tiers) == {"pro"}
    assert not catalog.policy.knows(Budget("free"))
    catalog.drop("pro")
    assert set(catalog.policy.tiers) == {"free", "paid", "enterprise"}


@pytest.mark.parametrize("seconds", [1, 59])
def test_a_tier_with_a_suspend_timeout_neon_refuses_is_refused(seconds: int) -> None:
    with pytest.raises(ValueError, match="at least 60"):
        DatabaseTierSpec.model_validate({"suspendTimeoutSeconds": seconds})


def test_the_sim_sync_reads_sim_plans_from_the_tiers_once_any_exists() -> None:
    from tenantdb.crypto import EncryptionKey
    from tenantdb.handlers.runtime import Runtime
    from tenantdb.handlers.sim_sync import plan_tiers_of
    from tenantdb.metrics import Metrics
    from tenantdb.reconcile.sim_sync.subscriptions import tier_for_plan

    runtime = Runtime(settings=Settings(encryption_key=KEY), cipher=EncryptionKey(KEY), metrics=Metrics())
    plan_tiers = plan_tiers_of(runtime)
    assert tier_for_plan("pro_6000", plan_tiers()) == "paid"  # TENANTDB_SIM_PLAN_TIERS
    runtime.budgets.tiers.put(TierDefinition(name="free", sim_plans=("free",)))
    runtime.budgets.tiers.put(TierDefinition(name="pro", sim_plans=("pro", "pro_*")))
    runtime.budgets.tiers.put(TierDefinition(name="max", sim_plans=("pro_25000",)))
    assert tier_for_plan("pro_6000", plan_tiers()) == "pro"
    assert tier_for_plan("pro_25000", plan_tiers()) == "max"  # the exact name wins
    assert tier_for_plan("team_8000", plan_tiers()) is None  # no tier claims it: the default, said

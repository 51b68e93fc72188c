"""The one condition helper: typed, transition time kept while the status holds, no-op when unchanged."""

from __future__ import annotations

import datetime

from tenantdb.api import Condition, ConditionStatus
from tenantdb.reconcile import conditions as cond

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(minutes=5)


def _ready(
    status: bool | None, *, reason: str = "Available", message: str = "ok", now: datetime.datetime = T0
) -> list[Condition]:
    return cond.set_condition([], kind=cond.READY, status=status, reason=reason, message=message, now=now)


def test_a_new_condition_carries_the_time_it_was_set() -> None:
    [ready] = _ready(True)
    assert (ready.type, ready.status, ready.reason, ready.message) == (
        "Ready",
        ConditionStatus.TRUE,
        "Available",
        "ok",
    )
    assert ready.last_transition_time == "2026-01-01T12:00:00Z"
    assert ready.observed_generation is None


def test_the_transition_time_stays_while_the_status_holds_even_when_the_reason_changes() -> None:
    before = _ready(False, reason="Creating", message="Creating the Neon project")
    after = cond.set_not_ready(before, reason="QuotaExceeded", message="Neon refused", now=T1, generation=3)
    [ready] = after
    assert (ready.reason, ready.message, ready.observed_generation) == ("QuotaExceeded", "Neon refused", 3)
    assert ready.last_transition_time == "2026-01-01T12:00:00Z"


def test_the_transition_time_moves_when_the_status_changes() -> None:
    before = _ready(False, reason="Creating")
    [ready] = cond.set_ready(before, reason="Available", message="ready", now=T1, generation=1)
    assert ready.status == ConditionStatus.TRUE
    assert ready.last_transition_time == "2026-01-01T12:05:00Z"


def test_nothing_changed_hands_back_the_same_list() -> None:
    before = cond.set_synced(_ready(True), reason="ReconcileSuccess", message="in sync", now=T0, generation=2)
    after = cond.set_synced(before, reason="ReconcileSuccess", message="in sync", now=T1, generation=2)
    assert after is before
    assert (
        cond.set_synced(before, reason="ReconcileSuccess", message="in sync", now=T1, generation=3)
        is not before
    )


def test_other_conditions_are_kept_and_the_list_is_sorted_by_type() -> None:
    conditions = cond.set_sync_failed(
        _ready(True), reason="ReconcileError", message="boom", now=T1, generation=1
    )
    conditions = cond.set_condition(
        conditions, kind=cond.BUDGET_EXCEEDED, status=None, reason="NotSyncedYet", message="", now=T1
    )
    assert [c.type for c in conditions] == ["BudgetExceeded", "Ready", "Synced"]
    assert cond.get_condition(conditions, cond.BUDGET_EXCEEDED).status == ConditionStatus.UNKNOWN  # type: ignore[union-attr]
    assert cond.is_true(conditions, cond.READY)
    assert not cond.is_true(conditions, cond.SYNCED)
    assert not cond.is_true([], cond.READY)


def test_long_messages_are_cut() -> None:
    [ready] = _ready(False, reason="NeonRejected", message="x" * 5000)
    assert len(ready.message) == 2000

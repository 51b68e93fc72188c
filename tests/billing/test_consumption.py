"""The consumption sync: batching, failures, partial answers and period rollover."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

import pytest

from tenantdb.billing import BILLED_METRICS, Prices, billing_period
from tenantdb.reconcile.consumption import (
    ConsumptionSnapshot,
    ConsumptionSyncError,
    merge_costs,
    sync_consumption,
)

NOW = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 1, tzinfo=UTC)
TEN_CU_HOURS = {"compute_unit_seconds": 36_000}  # 106 cents at the Launch price


@dataclasses.dataclass(frozen=True)
class Usage:
    """What the Neon client returns per project (a frozen model, as a real client's would be)."""

    project_id: str
    metrics: Mapping[str, int]


@dataclasses.dataclass(frozen=True)
class Call:
    project_ids: tuple[str, ...]
    start: datetime
    end: datetime
    granularity: str
    metrics: tuple[str, ...]


class FakeSource:
    """Answers each requested project with ``usage(project_id)`` (``None`` leaves it out), then
    adds ``extra`` entries to every answer."""

    def __init__(
        self,
        usage: Callable[[str], Mapping[str, int] | None] = lambda _: TEN_CU_HOURS,
        fail_on_call: int | None = None,
        extra: Sequence[Usage] = (),
    ) -> None:
        self.usage = usage
        self.fail_on_call = fail_on_call
        self.extra = list(extra)
        self.calls: list[Call] = []

    async def consumption(
        self,
        *,
        project_ids: Sequence[str],
        start: datetime,
        end: datetime,
        granularity: str,
        metrics: Sequence[str],
    ) -> list[Usage]:
        self.calls.append(Call(tuple(project_ids), start, end, granularity, tuple(metrics)))
        if self.fail_on_call == len(self.calls):
            raise ConnectionError("Neon is unreachable")
        answer = []
        for project_id in project_ids:
            metrics_of = self.usage(project_id)
            if metrics_of is not None:
                answer.append(Usage(project_id, metrics_of))
        return answer + self.extra


def ids(n: int) -> list[str]:
    return [f"project-{i:05d}" for i in range(n)]


# --- batching ----------------------------------------------------------------------------------------


async def test_a_thousand_projects_take_exactly_ten_calls(prices: Prices) -> None:
    source = FakeSource()
    snapshot = await sync_consumption(source=source, project_ids=ids(1000), now=NOW, prices=prices)
    assert len(source.calls) == 10
    assert all(len(call.project_ids) == 100 for call in source.calls)
    assert [p for call in source.calls for p in call.project_ids] == ids(1000)
    assert snapshot.complete
    assert len(snapshot.costs_cents) == 1000
    assert set(snapshot.costs_cents.values()) == {106}


async def test_the_last_batch_carries_the_remainder(prices: Prices) -> None:
    source = FakeSource()
    await sync_consumption(source=source, project_ids=ids(250), now=NOW, prices=prices, batch_size=100)
    assert [len(call.project_ids) for call in source.calls] == [100, 100, 50]


async def test_a_smaller_batch_size_makes_more_calls(prices: Prices) -> None:
    source = FakeSource()
    await sync_consumption(source=source, project_ids=ids(10), now=NOW, prices=prices, batch_size=3)
    assert [len(call.project_ids) for call in source.calls] == [3, 3, 3, 1]


@pytest.mark.parametrize("size", [0, 101, -1])
async def test_a_batch_size_outside_neons_range_is_refused(prices: Prices, size: int) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await sync_consumption(
            source=FakeSource(), project_ids=ids(1), now=NOW, prices=prices, batch_size=size
        )


async def test_duplicate_ids_are_asked_for_once(prices: Prices) -> None:
    source = FakeSource()
    snapshot = await sync_consumption(source=source, project_ids=["a", "b", "a"], now=NOW, prices=prices)
    assert source.calls[0].project_ids == ("a", "b")
    assert dict(snapshot.costs_cents) == {"a": 106, "b": 106}


async def test_no_projects_means_no_calls(prices: Prices) -> None:
    source = FakeSource()
    snapshot = await sync_consumption(source=source, project_ids=[], now=NOW, prices=prices)
    assert source.calls == []
    assert snapshot.complete
    assert dict(snapshot.costs_cents) == {}


async def test_each_call_asks_for_the_whole_period_and_the_billed_metrics(prices: Prices) -> None:
    source = FakeSource()
    snapshot = await sync_consumption(source=source, project_ids=ids(1), now=NOW, prices=prices)
    call = source.calls[0]
    # The end is the period's end, not now: Neon rounds `to` down to the granularity.
    assert (call.start, call.end, call.granularity) == (MARCH, APRIL, "monthly")
    assert call.metrics == BILLED_METRICS
    assert (snapshot.period_start, snapshot.period_end, snapshot.synced_at) == (MARCH, APRIL, NOW)


async def test_an_anchored_period_is_asked_for_daily(prices: Prices) -> None:
    source = FakeSource()
    await sync_consumption(source=source, project_ids=ids(1), now=NOW, prices=prices, anchor_day=15)
    call = source.calls[0]
    assert (call.start, call.end, call.granularity) == (
        datetime(2026, 2, 15, tzinfo=UTC),
        datetime(2026, 3, 15, tzinfo=UTC),
        "daily",
    )


async def test_a_naive_now_is_refused(prices: Prices) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await sync_consumption(
            source=FakeSource(), project_ids=ids(1), now=datetime(2026, 3, 12), prices=prices
        )


# --- failures and partial answers ----------------------------------------------------------------------


async def test_a_failed_batch_raises_and_names_the_batch(prices: Prices) -> None:
    source = FakeSource(fail_on_call=3)
    with pytest.raises(ConsumptionSyncError) as caught:
        await sync_consumption(source=source, project_ids=ids(1000), now=NOW, prices=prices)
    error = caught.value
    assert (error.batch_number, error.batch_count) == (3, 10)
    assert error.project_ids == tuple(ids(1000)[200:300])
    assert isinstance(error.__cause__, ConnectionError)
    assert len(source.calls) == 3  # no point asking further: the sync has failed


async def test_a_failed_sync_changes_nothing(prices: Prices) -> None:
    previous = {"project-00000": 700, "project-00001": 5}
    kept = dict(previous)
    with pytest.raises(ConsumptionSyncError):
        await sync_consumption(
            source=FakeSource(fail_on_call=1), project_ids=list(previous), now=NOW, prices=prices
        )
    assert previous == kept  # the caller still holds its costs; there is no snapshot to merge


async def test_a_project_absent_from_a_successful_answer_costs_zero(prices: Prices) -> None:
    # Neon leaves out metrics (and so projects) with no usage: silence is zero, not unknown.
    source = FakeSource(usage=lambda p: None if p == "b" else TEN_CU_HOURS)
    snapshot = await sync_consumption(source=source, project_ids=["a", "b", "c"], now=NOW, prices=prices)
    assert snapshot.missing == frozenset()
    assert snapshot.complete
    assert snapshot.costs_cents["b"] == 0


async def test_a_project_present_without_consumption_costs_zero(prices: Prices) -> None:
    snapshot = await sync_consumption(
        source=FakeSource(usage=lambda _: {}), project_ids=["a"], now=NOW, prices=prices
    )
    assert dict(snapshot.costs_cents) == {"a": 0}
    assert snapshot.complete


@pytest.mark.parametrize("bad", [-5, None, "12", 1.5])
async def test_a_project_with_malformed_metrics_is_missing(prices: Prices, bad: object) -> None:
    # "bad" also has a well-formed entry: one malformed part is enough to withhold its cost.
    malformed: Mapping[str, int] = {"compute_unit_seconds": bad}  # type: ignore[dict-item]
    source = FakeSource(
        usage=lambda p: malformed if p == "bad" else TEN_CU_HOURS, extra=[Usage("bad", TEN_CU_HOURS)]
    )
    snapshot = await sync_consumption(source=source, project_ids=["good", "bad"], now=NOW, prices=prices)
    assert dict(snapshot.costs_cents) == {"good": 106}
    assert snapshot.missing == frozenset({"bad"})


async def test_projects_that_were_not_asked_for_are_ignored(prices: Prices) -> None:
    source = FakeSource(extra=[Usage("stranger", TEN_CU_HOURS)])
    snapshot = await sync_consumption(source=source, project_ids=["a"], now=NOW, prices=prices)
    assert dict(snapshot.costs_cents) == {"a": 106}


async def test_a_project_split_over_entries_adds_up_before_rounding(prices: Prices) -> None:
    # 1 CU-second twice: 2 CU-seconds, still 1 cent (rounded once, not 1 + 1).
    one_second = {"compute_unit_seconds": 1}
    source = FakeSource(usage=lambda _: one_second, extra=[Usage("a", one_second)])
    snapshot = await sync_consumption(source=source, project_ids=["a"], now=NOW, prices=prices)
    assert dict(snapshot.costs_cents) == {"a": 1}


def test_a_snapshot_cannot_be_changed_afterwards() -> None:
    costs = {"a": 1}
    snapshot = ConsumptionSnapshot(MARCH, APRIL, NOW, costs, frozenset())
    costs["a"] = 99
    assert snapshot.costs_cents["a"] == 1
    with pytest.raises(TypeError):
        snapshot.costs_cents["a"] = 2  # type: ignore[index]


# --- merging --------------------------------------------------------------------------------------------


def snapshot_of(
    costs: dict[str, int], missing: Iterable[str] = (), start: datetime = MARCH
) -> ConsumptionSnapshot:
    end = billing_period(start).end
    return ConsumptionSnapshot(start, end, NOW, costs, frozenset(missing))


def test_a_partial_answer_keeps_the_previous_costs() -> None:
    merged = merge_costs({"a": 100, "b": 250}, snapshot_of({"a": 120}, {"b"}), previous_period_start=MARCH)
    assert merged == {"a": 120, "b": 250}


def test_a_complete_answer_replaces_every_cost() -> None:
    merged = merge_costs({"a": 100, "b": 250}, snapshot_of({"a": 120, "b": 260}), previous_period_start=MARCH)
    assert merged == {"a": 120, "b": 260}


def test_a_late_answer_never_lowers_a_cost_of_the_same_period() -> None:
    merged = merge_costs({"a": 100, "b": 250}, snapshot_of({"a": 120, "b": 0}), previous_period_start=MARCH)
    assert merged == {"a": 120, "b": 250}


def test_a_new_period_drops_the_old_periods_costs() -> None:
    merged = merge_costs(
        {"a": 480, "b": 30}, snapshot_of({"a": 2}, {"b"}, start=APRIL), previous_period_start=MARCH
    )
    assert merged == {"a": 2}  # b is unknown in April: neither 0 nor March's 30


def test_previous_costs_of_unknown_period_are_not_carried() -> None:
    merged = merge_costs({"a": 480, "b": 30}, snapshot_of({"a": 500}, {"b"}), previous_period_start=None)
    assert merged == {"a": 500}


def test_a_stale_snapshot_of_an_earlier_period_changes_nothing() -> None:
    previous = {"a": 2}
    merged = merge_costs(previous, snapshot_of({"a": 480}, start=FEBRUARY), previous_period_start=MARCH)
    assert merged == {"a": 2}
    assert merged is not previous


async def test_sync_then_merge_over_three_rounds(prices: Prices) -> None:
    # Round 1, March: every project answers. Round 2: one project goes missing. Round 3: April.
    costs: dict[str, int] = {}
    period: datetime | None = None
    answers: dict[str, Mapping[str, int] | None] = {"a": TEN_CU_HOURS, "b": {"compute_unit_seconds": 3600}}

    async def round_at(now: datetime) -> None:
        nonlocal costs, period
        snapshot = await sync_consumption(
            source=FakeSource(usage=answers.get), project_ids=["a", "b"], now=now, prices=prices
        )
        costs = merge_costs(costs, snapshot, previous_period_start=period)
        period = max(snapshot.period_start, period or snapshot.period_start)

    await round_at(NOW)
    assert costs == {"a": 106, "b": 11}
    answers["b"] = None
    answers["a"] = {"compute_unit_seconds": 72_000}
    await round_at(NOW)
    assert costs == {"a": 212, "b": 11}
    answers["a"] = {}
    await round_at(datetime(2026, 4, 1, 0, 15, tzinfo=UTC))
    assert costs == {"a": 0, "b": 0}  # b said nothing in April: it used nothing
    assert period == APRIL

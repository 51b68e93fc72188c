"""The consumption sync: one pass over every project the operator manages, for the whole
operator (not one loop per object), turning Neon's consumption into period costs in cents.

Rules:

- Project ids go to the source in batches of at most ``batch_size`` (Neon accepts up to 100 ids
  per call). Batches run one after another: Neon rate-limits the consumption API far below the
  rest of the API, and a sync every few minutes has no hurry.
- **A failed sync changes nothing.** Any batch that fails raises ``ConsumptionSyncError`` (naming
  the batch) and no snapshot is returned, so the caller keeps the costs it had.
- **Silence is zero.** Neon leaves metrics with no usage out of the answer, so a project that
  used nothing in the period may be missing from a successful answer: it costs 0. Only a
  project whose metrics are malformed is listed in ``ConsumptionSnapshot.missing`` and gets no
  cost.
- **A period's cost never goes down.** Within one period ``merge_costs`` keeps the higher of
  the previous and the new value, so a late or partial answer never lowers a known cost.
- **A new billing period starts from nothing.** ``merge_costs`` drops the previous period's
  values when the snapshot belongs to a later period; a project with malformed metrics in the
  first snapshot of a period has an *unknown* cost (absent from the result), never last
  period's figure. Budget decisions treat an unknown cost as "do not resume yet".
- The query covers the whole billing period ``[start, end)``, with ``end`` in the future: Neon
  rounds ``from``/``to`` down to the granularity, so ``to=now`` with monthly granularity would
  ask for an empty range. Monthly granularity is used for calendar-month periods, daily for
  periods anchored on another day (monthly buckets would not line up with them).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from typing import Protocol

from tenantdb.billing import BILLED_METRICS, BillingPeriod, Prices, billing_period, exact_cost_usd, to_cents

__all__ = [
    "MAX_BATCH_SIZE",
    "ConsumptionSnapshot",
    "ConsumptionSource",
    "ConsumptionSyncError",
    "PartialConsumption",
    "ProjectConsumptionLike",
    "merge_costs",
    "sync_consumption",
]

MAX_BATCH_SIZE = 100  # Neon: at most 100 project_ids per consumption call


class ProjectConsumptionLike(Protocol):
    """One project's consumption totals for the queried range, metric name → integer total."""

    @property
    def project_id(self) -> str: ...

    @property
    def metrics(self) -> Mapping[str, int]: ...


class ConsumptionSource(Protocol):
    """What the sync needs from the Neon client (which pages through cursors itself).

    The sync always passes every argument, so an implementation may give ``granularity`` and
    ``metrics`` defaults or not. The result is a ``Sequence`` so that a client returning a
    ``list`` of its own model class matches (``list`` itself is invariant).
    """

    async def consumption(
        self,
        *,
        project_ids: Sequence[str],
        start: datetime,
        end: datetime,
        granularity: str,
        metrics: Sequence[str],
    ) -> Sequence[ProjectConsumptionLike]: ...


class PartialConsumption(list[ProjectConsumptionLike]):
    """An answer that could not cover every project asked about (one organisation of the pool
    unreachable, or its key rejected): those in ``unavailable`` keep their previous cost, as
    a malformed answer does, instead of counting as no usage."""

    def __init__(self, items: Sequence[ProjectConsumptionLike], unavailable: frozenset[str]) -> None:
        super().__init__(items)
        self.unavailable = unavailable


class ConsumptionSyncError(Exception):
    """One batch of the sync failed; the whole sync counts as failed. Raised from the cause."""

    def __init__(self, *, batch_number: int, batch_count: int, project_ids: Sequence[str]) -> None:
        self.batch_number = batch_number  # 1-based
        self.batch_count = batch_count
        self.project_ids = tuple(project_ids)
        super().__init__(
            f"consumption sync failed at batch {batch_number} of {batch_count} "
            f"({len(self.project_ids)} projects, first {self.project_ids[0]})"
        )


@dataclasses.dataclass(frozen=True)
class ConsumptionSnapshot:
    """The costs learnt by one sync. ``missing`` projects have no cost here (not even 0)."""

    period_start: datetime
    period_end: datetime
    synced_at: datetime
    costs_cents: Mapping[str, int]
    missing: frozenset[str]
    compute_seconds: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """CU-seconds this period per project (what a compute quota is measured against)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "costs_cents", types.MappingProxyType(dict(self.costs_cents)))
        object.__setattr__(self, "compute_seconds", types.MappingProxyType(dict(self.compute_seconds)))

    @property
    def complete(self) -> bool:
        """Whether every requested project got a cost."""
        return not self.missing

    @property
    def period(self) -> BillingPeriod:
        return BillingPeriod(start=self.period_start, end=self.period_end)


def _batches(project_ids: Sequence[str], size: int) -> list[list[str]]:
    return [list(project_ids[i : i + size]) for i in range(0, len(project_ids), size)]


def _project_cost_cents(entries: Sequence[Mapping[str, int]], prices: Prices) -> int:
    # One entry per project is the contract; should a source split one project over several
    # entries (one per Neon billing period, say), they are parts of the range and add up. Cost is
    # linear in the metrics, so adding exact costs and rounding once equals pricing the sum.
    return to_cents(sum((exact_cost_usd(metrics, prices) for metrics in entries), Fraction(0)))


async def sync_consumption(
    *,
    source: ConsumptionSource,
    project_ids: Sequence[str],
    now: datetime,
    prices: Prices,
    batch_size: int = MAX_BATCH_SIZE,
    anchor_day: int = 1,
) -> ConsumptionSnapshot:
    """Fetch the current period's consumption of ``project_ids`` and price it.

    Raises ``ConsumptionSyncError`` when any call fails (the caller keeps its previous costs),
    ``ValueError`` for a naive ``now`` or a ``batch_size`` outside 1..100.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be within 1..{MAX_BATCH_SIZE}, got {batch_size}")
    period = billing_period(now, anchor_day=anchor_day)
    wanted = list(dict.fromkeys(project_ids))  # de-duplicated, order kept
    granularity = "monthly" if period.is_calendar_month else "daily"

    answers: dict[str, list[Mapping[str, int]]] = {}
    unavailable: set[str] = set()
    batches = _batches(wanted, batch_size)
    for number, batch in enumerate(batches, start=1):
        try:
            answer = await source.consumption(
                project_ids=batch,
                start=period.start,
                end=period.end,
                granularity=granularity,
                metrics=BILLED_METRICS,
            )
        except Exception as exc:
            raise ConsumptionSyncError(
                batch_number=number, batch_count=len(batches), project_ids=batch
            ) from exc
        requested = set(batch)
        if isinstance(answer, PartialConsumption):
            unavailable.update(answer.unavailable & requested)
        for project in answer:
            # A project we did not ask about in this batch is not ours to price.
            if project.project_id in requested:
                answers.setdefault(project.project_id, []).append(project.metrics)

    costs: dict[str, int] = {}
    compute: dict[str, int] = {}
    malformed: set[str] = set()
    for project_id in wanted:
        if project_id in unavailable:
            malformed.add(project_id)  # not asked for real: keeps its previous cost
            continue
        entries = answers.get(project_id, [])
        try:
            # Absent from a successful answer: Neon had no usage to report for it.
            costs[project_id] = _project_cost_cents(entries, prices)
        except ValueError:
            malformed.add(project_id)  # reported as missing, keeps its previous cost
            continue
        compute[project_id] = sum(int(e.get("compute_unit_seconds", 0)) for e in entries)
    return ConsumptionSnapshot(
        period_start=period.start,
        period_end=period.end,
        synced_at=now,
        costs_cents=costs,
        missing=frozenset(malformed),
        compute_seconds=compute,
    )


def merge_costs(
    previous: Mapping[str, int], snapshot: ConsumptionSnapshot, *, previous_period_start: datetime | None
) -> dict[str, int]:
    """The costs to keep after ``snapshot``, project id → cents.

    ``previous_period_start`` is the period ``previous`` belongs to (``None``: unknown, treated as
    an older period, so values of unknown age are never carried over). The result belongs to
    the later of the two periods:

    - same period: for each project the higher of its previous and its new cost (a period's
      cost only grows; a late answer must not lower it), and the previous value of every
      project the snapshot lacks;
    - the snapshot's period is later (rollover): the snapshot's costs only;
    - the snapshot's period is earlier (a stale sync finishing late): ``previous`` unchanged.
    """
    if previous_period_start is not None and previous_period_start > snapshot.period_start:
        return dict(previous)
    if previous_period_start is None or previous_period_start < snapshot.period_start:
        return dict(snapshot.costs_cents)
    merged = dict(previous)
    for project_id, cents in snapshot.costs_cents.items():
        merged[project_id] = max(cents, merged.get(project_id, 0))
    return merged

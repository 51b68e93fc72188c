"""Consumption history (``GET /consumption_history/v2/projects``) from the usage set by tests.

``set_usage(project, compute_unit_seconds=36000)`` states a project's consumption so far in
the current billing period (a calendar month, UTC). The emulator spreads that total evenly
over the time the project has been accruing it in this period: from the later of the
period's start and the project's creation, until now (or until deletion). A timeframe gets
the share of the total that accrued within it; shares are rounded on the cumulative curve,
so the timeframes covering the period up to now always add up to exactly the total, at
any granularity. Earlier periods hold zeros.

As on Neon, silence is zero: a metric with no usage in a timeframe is left out of it, a
timeframe with no usage at all is left out, and a project that used nothing in the range is
missing from the answer.

Timeframes: ``from`` is rounded down to the granularity; timeframes follow one another
while they start before ``to``; only those that overlap the project's life are listed,
none in the future. Each billing period the timeframes fall into is one ``periods`` entry.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from tenantdb.testing.neon.clock import billing_period, month_start, next_month, timestamp
from tenantdb.testing.neon.model import Project

__all__ = [
    "EARLIEST_FROM",
    "GRANULARITIES",
    "HISTORY_LIMITS",
    "floor",
    "project_consumption",
    "timeframes",
]

GRANULARITIES = ("hourly", "daily", "monthly")
EARLIEST_FROM = datetime.datetime(2024, 3, 1, tzinfo=datetime.UTC)
"""The spec: "The earliest allowed ``from`` value is March 1, 2024"."""
HISTORY_LIMITS = {
    "hourly": datetime.timedelta(hours=168),
    "daily": datetime.timedelta(days=60),
    "monthly": datetime.timedelta(days=366),
}
"""How far back each granularity reaches (168 hours, 60 days, a year)."""
_PERIOD_PLAN = "launch"

Timeframe = tuple[datetime.datetime, datetime.datetime]


def floor(moment: datetime.datetime, granularity: str) -> datetime.datetime:
    """``moment`` rounded down to the hour, day or month (UTC)."""
    moment = moment.astimezone(datetime.UTC)
    if granularity == "hourly":
        return moment.replace(minute=0, second=0, microsecond=0)
    if granularity == "daily":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return month_start(moment)


def _step(moment: datetime.datetime, granularity: str) -> datetime.datetime:
    if granularity == "hourly":
        return moment + datetime.timedelta(hours=1)
    if granularity == "daily":
        return moment + datetime.timedelta(days=1)
    return next_month(moment)


def timeframes(start: datetime.datetime, end: datetime.datetime, granularity: str) -> list[Timeframe]:
    """Consecutive timeframes from ``floor(start)`` while they begin before ``end``."""
    frames: list[Timeframe] = []
    moment = floor(start, granularity)
    while moment < end:
        following = _step(moment, granularity)
        frames.append((moment, following))
        moment = following
    return frames


def _accrued(
    total: int, since: datetime.datetime, until: datetime.datetime, moment: datetime.datetime
) -> int:
    """How much of ``total`` had accrued at ``moment``, spread evenly over [since, until]."""
    if moment <= since:
        return 0
    if moment >= until:
        return total
    share = (moment - since) / (until - since)
    return round(total * share)


def project_consumption(
    project: Project, frames: Iterable[Timeframe], metrics: Sequence[str], now: datetime.datetime
) -> list[dict[str, Any]]:
    """The ``periods`` of one project (the spec's ``ConsumptionHistoryPerPeriodV2`` list)."""
    period_start, _ = billing_period(now)
    since = max(period_start, project.created_at)
    until = min(now, project.deleted_at) if project.deleted_at is not None else now
    ends = project.deleted_at or now
    periods: dict[datetime.datetime, dict[str, Any]] = {}
    for frame_start, frame_end in frames:
        if frame_end <= project.created_at or frame_start > ends:
            continue  # outside the project's life (or in the future)
        values = [
            {"metric_name": metric, "value": value}
            for metric in metrics
            if (
                value := _accrued(project.usage.get(metric, 0), since, until, frame_end)
                - _accrued(project.usage.get(metric, 0), since, until, frame_start)
            )
        ]
        if not values:
            continue  # Neon leaves out metrics (and timeframes) with no usage
        month = month_start(frame_start)
        period = periods.get(month)
        if period is None:
            period = periods[month] = _period(project.id, month, now)
        period["consumption"].append(
            {
                "timeframe_start": timestamp(frame_start),
                "timeframe_end": timestamp(frame_end),
                "metrics": values,
            }
        )
    return list(periods.values())


def _period(project_id: str, month: datetime.datetime, now: datetime.datetime) -> dict[str, Any]:
    period: dict[str, Any] = {
        # Stable per project and month, as a billing period's id is.
        "period_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"neon-emulator/{project_id}/{month:%Y-%m}")),
        "period_plan": _PERIOD_PLAN,
        "period_start": timestamp(month),
        "consumption": [],
    }
    end = next_month(month)
    if end <= now:  # the spec: period_end is "available for the past periods only"
        period["period_end"] = timestamp(end)
    return period

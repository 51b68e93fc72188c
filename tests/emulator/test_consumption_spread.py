"""How a period's usage is spread over timeframes (pure functions, no server)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tenantdb.testing.neon.consumption import project_consumption, timeframes
from tenantdb.testing.neon.model import Branch, Database, Endpoint, Project, Role

UTC = datetime.UTC
NOW = datetime.datetime(2026, 3, 20, 12, 30, tzinfo=UTC)


def _project(
    created: datetime.datetime, *, deleted: datetime.datetime | None = None, **usage: int
) -> Project:
    return Project(
        seq=1, id="quiet-sea-12345678", name="p", org_id="org", region_id="aws-us-east-1", pg_version=17,
        history_retention_seconds=0, store_passwords=True, settings={}, default_endpoint_settings={},
        created_at=created, updated_at=created,
        branch=Branch(id="br-a-1", name="main", created_at=created),
        endpoint=Endpoint(id="ep-a-1", min_cu=0.25, max_cu=2, suspend_timeout_seconds=0,
                          created_at=created, updated_at=created),
        role=Role(name="r", physical="r_1", password="x", created_at=created),
        database=Database(id=1, name="d", physical="d_1", created_at=created),
        usage=usage, deleted_at=deleted,
    )  # fmt: skip


def _values(periods: list[dict[str, Any]], metric: str = "compute_unit_seconds") -> list[int]:
    return [
        next(m["value"] for m in frame["metrics"] if m["metric_name"] == metric)
        for period in periods
        for frame in period["consumption"]
    ]


# From the period's start (March 1st) to NOW, 468.5 hours: 100 per hour accrues to this total.
PER_HOUR = 100
TOTAL = 46850


@pytest.mark.parametrize(("granularity", "start", "expected"), [
    ("hourly", NOW - datetime.timedelta(hours=100), 100 * 100 + 50),  # from 08:00 four days ago
    ("daily", datetime.datetime(2026, 2, 1, tzinfo=UTC), TOTAL),
    ("monthly", datetime.datetime(2025, 6, 1, tzinfo=UTC), TOTAL),
])  # fmt: skip
def test_frames_add_up_exactly_at_every_granularity(
    granularity: str, start: datetime.datetime, expected: int
) -> None:
    project = _project(datetime.datetime(2026, 1, 10, tzinfo=UTC), compute_unit_seconds=TOTAL)
    frames = timeframes(start, datetime.datetime(2026, 4, 1, tzinfo=UTC), granularity)
    periods = project_consumption(project, frames, ["compute_unit_seconds"], NOW)
    assert sum(_values(periods)) == expected


def test_usage_accrues_evenly_from_the_period_start() -> None:
    project = _project(datetime.datetime(2026, 1, 10, tzinfo=UTC), compute_unit_seconds=TOTAL)
    frames = timeframes(datetime.datetime(2026, 3, 1, tzinfo=UTC), NOW, "daily")
    values = _values(project_consumption(project, frames, ["compute_unit_seconds"], NOW))
    assert values == [24 * PER_HOUR] * 19 + [12.5 * PER_HOUR]  # whole days, then today's half day


def test_usage_starts_accruing_at_creation_within_the_period() -> None:
    created = datetime.datetime(2026, 3, 20, 10, 30, tzinfo=UTC)  # two hours before NOW
    project = _project(created, compute_unit_seconds=200)
    frames = timeframes(datetime.datetime(2026, 3, 20, tzinfo=UTC), NOW, "hourly")
    values = _values(project_consumption(project, frames, ["compute_unit_seconds"], NOW))
    assert values == [50, 100, 50]  # 10:00 (half), 11:00, 12:00 (half)


def test_periods_without_usage_are_left_out_as_neon_does() -> None:
    project = _project(datetime.datetime(2026, 1, 10, tzinfo=UTC), compute_unit_seconds=500)
    frames = timeframes(
        datetime.datetime(2026, 1, 1, tzinfo=UTC), datetime.datetime(2026, 4, 1, tzinfo=UTC), "monthly"
    )
    periods = project_consumption(project, frames, ["compute_unit_seconds"], NOW)
    # January and February used nothing (usage is this period's): silence, not zeros.
    assert [p["period_start"] for p in periods] == ["2026-03-01T00:00:00Z"]
    assert _values(periods) == [500]
    assert [("period_end" in p) for p in periods] == [False]


def test_frames_outside_the_projects_life_are_left_out() -> None:
    created = datetime.datetime(2026, 3, 18, 6, tzinfo=UTC)
    project = _project(created, compute_unit_seconds=100)
    frames = timeframes(
        datetime.datetime(2026, 3, 1, tzinfo=UTC), datetime.datetime(2026, 3, 25, tzinfo=UTC), "daily"
    )
    periods = project_consumption(project, frames, ["compute_unit_seconds"], NOW)
    starts = [frame["timeframe_start"] for frame in periods[0]["consumption"]]
    assert starts == ["2026-03-18T00:00:00Z", "2026-03-19T00:00:00Z", "2026-03-20T00:00:00Z"]


def test_a_deleted_projects_usage_stops_at_its_deletion() -> None:
    created = datetime.datetime(2026, 3, 10, tzinfo=UTC)
    project = _project(created, deleted=datetime.datetime(2026, 3, 12, tzinfo=UTC), compute_unit_seconds=200)
    frames = timeframes(datetime.datetime(2026, 3, 1, tzinfo=UTC), NOW, "daily")
    values = _values(project_consumption(project, frames, ["compute_unit_seconds"], NOW))
    assert values == [100, 100]  # the 10th and the 11th; the 12th (deleted at its start) used nothing


def test_timeframes_round_from_down_and_run_while_before_to() -> None:
    frames = timeframes(
        datetime.datetime(2026, 3, 15, 15, 30, tzinfo=UTC),
        datetime.datetime(2026, 3, 17, 0, 1, tzinfo=UTC),
        "daily",
    )
    assert [(a.day, b.day) for a, b in frames] == [(15, 16), (16, 17), (17, 18)]
    months = timeframes(
        datetime.datetime(2026, 11, 5, tzinfo=UTC), datetime.datetime(2027, 1, 2, tzinfo=UTC), "monthly"
    )
    assert [(a.month, b.month) for a, b in months] == [(11, 12), (12, 1), (1, 2)]

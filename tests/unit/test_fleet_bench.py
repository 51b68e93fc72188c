"""The fleet benchmark's arithmetic (bench/fleet.py): percentiles, call rates, windows, metrics."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load_bench() -> ModuleType:
    path = Path(__file__).parents[2] / "bench" / "fleet.py"
    spec = importlib.util.spec_from_file_location("bench_fleet", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fleet = _load_bench()


def test_p95_of_twenty_signups_is_the_nineteenth_smallest() -> None:
    values = [float(v) for v in range(20, 0, -1)]  # unsorted on purpose
    assert fleet.percentile(values, 0.95) == 19.0
    assert fleet.percentile(values, 0.5) == 10.0
    assert fleet.percentile([3.0], 0.95) == 3.0
    assert fleet.percentile([], 0.95) is None


def test_a_signup_that_never_got_ready_makes_the_p95_infinite() -> None:
    values = [1.0] * 18 + [math.inf, math.inf]
    assert fleet.percentile(values, 0.95) == math.inf
    assert fleet.signup_figures(values)["p95_s"] is None
    assert fleet.signup_figures(values)["ready"] == 18


def test_calls_per_minute_at_the_default_interval_are_measured_as_they_are() -> None:
    by_route = {"GET /projects": 100, "GET /projects/{project_id}": 40}
    assert fleet.calls_per_minute(by_route, 600.0, interval=300.0, default_interval=300.0) == 14.0


def test_a_scaled_down_interval_scales_back_the_project_list_only() -> None:
    # A 60 s interval lists five times as often: 500 list calls in 2 min are 50/min at 300 s;
    # the endpoint rotation (paced per minute) and consumption are not paced by the interval.
    by_route = {
        "GET /projects": 500,
        "GET /projects/{project_id}/endpoints": 20,
        "GET /consumption_history/v2/projects": 20,
    }
    rate = fleet.calls_per_minute(by_route, 120.0, interval=60.0, default_interval=300.0)
    assert rate == pytest.approx(50.0 + 10.0 + 10.0)
    with pytest.raises(ValueError, match="longer than zero"):
        fleet.calls_per_minute(by_route, 0.0, interval=60.0, default_interval=300.0)


@dataclasses.dataclass
class _Call:
    route: str
    at: datetime.datetime


def test_calls_are_counted_by_route_inside_the_window_only() -> None:
    t0 = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)
    calls = [
        _Call("GET /projects", t0),
        _Call("GET /projects", t0 + datetime.timedelta(seconds=5)),
        _Call("POST /projects", t0 + datetime.timedelta(seconds=9)),
        _Call("GET /projects", t0 + datetime.timedelta(seconds=10)),  # the window's end: out
    ]
    since = t0.timestamp()
    assert fleet.calls_by_route(calls, since, since + 10) == {"GET /projects": 2, "POST /projects": 1}


def test_metric_sum_adds_the_matching_samples_and_tells_absent_from_zero() -> None:
    text = (
        "# TYPE tenantdb_reconciles_total counter\n"
        'tenantdb_reconciles_total{kind="GlobalDatabase",result="success"} 3.0\n'
        'tenantdb_reconciles_total{kind="WorkspaceDatabase",result="success"} 4.0\n'
        'tenantdb_reconciles_total{kind="GlobalDatabase",result="error"} 1.0\n'
        "# TYPE tenantdb_fleet_resources gauge\n"
        "tenantdb_fleet_resources 0.0\n"
    )
    assert fleet.metric_sum(text, "tenantdb_reconciles_total", result="success") == 7.0
    assert fleet.metric_sum(text, "tenantdb_fleet_resources") == 0.0
    assert fleet.metric_sum(text, "tenantdb_no_such_metric") is None

"""Benchmark: how far past their limit a user gets, with and without the hard stop.

SIMULATED TIME (said in the output and the README): a 24-hour day is stepped minute by minute
in a fraction of a second. What runs is the operator's own code: ``BudgetSync.sync_once`` (the
consumption sync, cost merge, enforcement, and the compute quotas of ``billing.quotas``) on
the simulated clock, and the Neon emulator's quota rule (``testing.neon.quota``) deciding when
a project's computes stop. Only Neon's reporting is modelled here: the consumption answer
shows each project's usage as it was ``--delay`` seconds ago (Neon: 15-60 minutes late).

One user on the free tier (500 cents) with two databases, each burning a constant load
(4 CU and 2 CU, compute at $0.106 per CU-hour); the sync every ``--interval`` seconds. The
worst overspend is taken over sync phases (when, inside a sync interval, the loads started).
A database stops burning when the operator disables its endpoint or its quota is passed.
The quota is compared with the project's real-time compute counter (Neon enforces quotas on
its own accounting; only the reporting is late).

Usage: ``.venv/bin/python bench/overspend.py [--full]``; writes ``bench/results/quick/overspend.json``,
with ``--full`` ``bench/results/overspend.json``. The defaults are already the full size (a
second or two).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import datetime
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import _quick
from tenantdb.billing import Prices, cost_cents
from tenantdb.config import Settings, Tier
from tenantdb.metrics import Metrics
from tenantdb.reconcile.budget_sync import BudgetSync
from tenantdb.reconcile.enforcement import BudgetRecord, DatabaseRecord
from tenantdb.testing.neon.quota import over_compute_quota

START = datetime.datetime(2026, 12, 1, 0, 0, tzinfo=datetime.UTC)
LOADS_CU = {"p-global": 4.0, "p-workspace": 2.0}
STEP = 60  # seconds of simulated time per step


class Project:
    """One emulated project: its real-time counter, its usage history, its settings."""

    def __init__(self, project_id: str, load_cu: float) -> None:
        self.id = project_id
        self.load_cu = load_cu
        self.usage: dict[str, int] = {"compute_unit_seconds": 0}
        self.settings: dict[str, Any] = {}
        self.disabled = False
        self.history: list[tuple[float, int]] = [(0.0, 0)]

    @property
    def running(self) -> bool:
        return not self.disabled and not over_compute_quota(self.settings, self.usage)

    def burn(self, now: float, seconds: float) -> None:
        if self.running:
            used = self.usage["compute_unit_seconds"] + round(self.load_cu * seconds)
            quota = int((self.settings.get("quota") or {}).get("compute_time_seconds") or 0)
            if quota > 0:
                used = min(used, max(quota, self.usage["compute_unit_seconds"]))  # stopped at the quota
            self.usage["compute_unit_seconds"] = used
        self.history.append((now, self.usage["compute_unit_seconds"]))

    def reported(self, now: float, delay: float) -> int:
        index = bisect.bisect_right([t for t, _ in self.history], now - delay) - 1
        return self.history[max(index, 0)][1]


class Neon:
    """The Neon side the operator calls: consumption (late), endpoints, quotas. Counts calls."""

    def __init__(self, projects: dict[str, Project], delay: float) -> None:
        self.projects, self.delay, self.now = projects, delay, 0.0
        self.calls: dict[str, int] = {"consumption": 0, "quota": 0, "endpoint": 0, "list_endpoints": 0}

    async def consumption(self, *, project_ids: Sequence[str], **_: Any) -> list[Any]:
        self.calls["consumption"] += 1
        answer = []
        for project_id in project_ids:
            used = self.projects[project_id].reported(self.now, self.delay)
            if used:  # silence is zero: Neon leaves out what used nothing
                answer.append(SimpleNamespace(project_id=project_id, metrics={"compute_unit_seconds": used}))
        return answer

    async def list_endpoints(self, project_id: str) -> list[Any]:
        self.calls["list_endpoints"] += 1
        project = self.projects[project_id]
        return [SimpleNamespace(id=f"ep-{project_id}", type="read_write", disabled=project.disabled)]

    async def update_endpoint(self, project_id: str, endpoint_id: str, **changes: Any) -> list[Any]:
        self.calls["endpoint"] += 1
        if "disabled" in changes:
            self.projects[project_id].disabled = bool(changes["disabled"])
        return []

    async def wait_for_operations(self, project_id: str, operations: Any, *, timeout: float = 300.0) -> None:
        return None

    def serialised(self, project_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()

    async def set_compute_quota(self, project_id: str, compute_time_seconds: int) -> None:
        self.calls["quota"] += 1
        self.projects[project_id].settings["quota"] = {"compute_time_seconds": compute_time_seconds}


class Nowhere:
    async def patch_status(self, **_: Any) -> None:
        return None

    async def set_database_costs(self, costs: Any, *, synced_at: Any) -> int:
        return 0

    async def update_budget_usage(self, **_: Any) -> None:
        return None


async def run(
    *, hard_stop: bool, delay: float, interval: float, phase: float, hours: float
) -> dict[str, Any]:
    settings = Settings(encryption_key="0" * 64, consumption_sync_interval_seconds=interval)
    projects = {pid: Project(pid, load) for pid, load in LOADS_CU.items()}
    neon, nowhere = Neon(projects, delay), Nowhere()
    clock = {"now": 0.0}
    sync = BudgetSync(
        settings=settings, metrics=Metrics(), clock=lambda: START + datetime.timedelta(seconds=clock["now"])
    )
    sync.put_budget("default", "user-ann", BudgetRecord(user_id="ann", tier=Tier.FREE))
    for kind, pid in (("GlobalDatabase", "p-global"), ("WorkspaceDatabase", "p-workspace")):
        record = DatabaseRecord(kind, "default", pid, "ann", pid, f"ep-{pid}", max_cu=LOADS_CU[pid])
        sync.put_database(record)
    next_sync, syncs = phase, 0
    t = 0.0
    while t < hours * 3600:
        for project in projects.values():
            project.burn(t, STEP)
        t += STEP
        clock["now"] = neon.now = t
        if t >= next_sync:
            await sync.sync_once(
                source=neon,
                store=nowhere,
                kube=nowhere,
                neon=neon,
                post_event=lambda *e: None,
                quotas=neon if hard_stop else None,
            )
            syncs += 1
            next_sync += interval
    total = sum(p.usage["compute_unit_seconds"] for p in projects.values())
    spent = cost_cents({"compute_unit_seconds": total}, Prices.from_settings(settings))
    return {"spent_cents": spent, "syncs": syncs, "calls": dict(neon.calls)}


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=1800.0, help="Neon's reporting delay, seconds")
    parser.add_argument("--interval", type=float, default=900.0, help="sync interval, seconds")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours")
    parser.add_argument("--output", type=Path, default=None, help="result file (default: see --full)")
    args = _quick.parse(parser, full={}, argv=argv)  # a second or two at full size: the same defaults
    limit = 500
    phases = [args.interval * k / 6 for k in range(6)]
    worst: dict[bool, dict[str, Any]] = {}
    for hard_stop in (False, True):
        runs = [
            await run(
                hard_stop=hard_stop, delay=args.delay, interval=args.interval, phase=p, hours=args.hours
            )
            for p in phases
        ]
        worst[hard_stop] = max(runs, key=lambda r: r["spent_cents"])
    over = {k: max(0, v["spent_cents"] - limit) for k, v in worst.items()}
    with_stop = worst[True]
    result = {
        "limit_cents": limit,
        "overspend_cents_without_hard_stop": over[False],
        "overspend_cents_with_hard_stop": over[True],
        "reporting_delay_seconds": args.delay,
        "sync_interval_seconds": args.interval,
        "simulated_time": True,
        "simulated_hours": args.hours,
        "loads_cu": LOADS_CU,
        "overspend_percent_without_hard_stop": round(100 * over[False] / limit, 2),
        "overspend_percent_with_hard_stop": round(100 * over[True] / limit, 2),
        "syncs": with_stop["syncs"],
        "neon_calls_with_hard_stop": with_stop["calls"],
        "quota_writes_per_sync": round(with_stop["calls"]["quota"] / max(with_stop["syncs"], 1), 3),
        **_quick.commit(),
    }
    written = _quick.output(args, "overspend.json")
    written.write_text(json.dumps(result, indent=2) + "\n")
    print("SIMULATED TIME: a day stepped minute by minute through the operator's own sync code")
    print(
        f"limit {limit} cents; reporting delay {args.delay:.0f} s; sync every {args.interval:.0f} s; "
        f"loads {LOADS_CU} CU"
    )
    for hard_stop, label in ((False, "without"), (True, "with")):
        percent = result[f"overspend_percent_{label}_hard_stop"]
        print(f"worst overspend {label} the hard stop: {over[hard_stop]} cents ({percent}%)")
    print(f"Neon calls with the hard stop over {with_stop['syncs']} syncs: {with_stop['calls']}")
    print(f"written to {written}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))

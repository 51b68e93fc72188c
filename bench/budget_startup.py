"""Benchmark: budget start-up with B DatabaseBudgets, before and after enforcing per user.

Runs the operator's own code: each budget's handler does what ``handlers/budgets.py`` does at a
resume (seed from the object's status, register, enforce its user unless the status already
records its generation and limit), all B at once as kopf's workers run them, through
``BudgetSync`` writing to an in-memory API server that applies each status merge patch and
counts it. Each user has one GlobalDatabase with a known cost.

- start: a first start (no budget has a status yet): every budget must be written once.
- restart: a new process over the statuses the first one left, nothing changed: no write.
- sync: the first consumption sync after it (a full pass, a new ``lastSyncTime``): B writes;
  a second one with nothing changed: none.

Baseline, the code before: every handler re-planned and rewrote every budget registered so far
(``BudgetSync.enforce`` over all users, no memory of what was written), B(B+1)/2 status patches
at the least (more when the handlers interleave). It is measured on a sample of
``--baseline-n`` budgets (the same loop, run one handler after another) and extrapolated to B:
patches exactly, time by (B / sample)^2.

CPU only: the in-memory API server answers at once. Against a real API server every patch also
costs a round trip (a few ms): multiply the patch counts.

Usage: ``.venv/bin/python bench/budget_startup.py [--n 2000] [--baseline-n 300] [--full]``;
writes ``bench/results/quick/budget_startup.json``, with ``--full`` ``bench/results/budget_startup.json``.
The defaults are already the full size (a few seconds: CPU only).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import _quick
from tenantdb.config import Settings, Tier
from tenantdb.metrics import Metrics
from tenantdb.reconcile.budget import loop as budget_loop
from tenantdb.reconcile.budget_sync import BudgetSync
from tenantdb.reconcile.enforcement import BudgetRecord, DatabaseRecord

NOW = datetime.datetime(2026, 12, 2, 12, tzinfo=datetime.UTC)
SETTINGS = Settings(encryption_key="0" * 64)


class ApiServer:
    """DatabaseBudget statuses as an API server holds them, patched by JSON merge patch."""

    def __init__(self) -> None:
        self.status: dict[str, dict[str, Any]] = {}
        self.patches: Counter[str] = Counter()

    async def patch_status(
        self, *, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self.patches[plural] += 1
        held = self.status.setdefault(f"{plural}/{name}", {})
        for key, value in status.items():
            if value is None:
                held.pop(key, None)
            else:
                held[key] = value

    def budget(self, name: str) -> dict[str, Any]:
        return dict(self.status.get(f"databasebudgets/{name}", {}))


class Rows:
    def __init__(self) -> None:
        self.writes = 0

    async def set_database_costs(self, costs: Mapping[str, int], *, synced_at: datetime.datetime) -> int:
        return len(costs)

    async def update_budget_usage(self, **_: Any) -> None:
        self.writes += 1


class NoEndpoints:
    """Nobody is over budget here: no endpoint is switched."""

    async def list_endpoints(self, project_id: str) -> list[Any]:
        return []

    async def update_endpoint(self, project_id: str, endpoint_id: str, **changes: Any) -> list[Any]:
        return []

    async def wait_for_operations(self, project_id: str, operations: Any, *, timeout: float = 300.0) -> None:
        return None

    def serialised(self, project_id: str) -> Any:
        raise AssertionError("no switch expected")


def _user(index: int) -> str:
    return f"user-{index:05d}"


def _process(n: int) -> BudgetSync:
    """A process that has registered every database (their resumes) and read the costs."""
    sync = BudgetSync(settings=SETTINGS, metrics=Metrics(), clock=lambda: NOW)
    for index in range(n):
        user = _user(index)
        sync.put_database(
            DatabaseRecord(
                kind="GlobalDatabase", namespace="default", name=f"db-{user}", user_id=user,
                project_id=f"p-{user}", endpoint_id=f"ep-{user}",
            )
        )  # fmt: skip
        sync.costs[f"p-{user}"] = index % 400  # all within the free tier's 500 cents
    return sync


def _ports(api: ApiServer, rows: Rows) -> dict[str, Any]:
    return {"store": rows, "kube": api, "neon": NoEndpoints(), "post_event": lambda *e: None}


async def _resume(sync: BudgetSync, api: ApiServer, rows: Rows, index: int) -> None:
    """What the budget handler does at a resume (claims and the metadata upsert left out)."""
    user = _user(index)
    name = f"budget-{user}"
    status = api.budget(name)
    sync.seed_quotas(status.get("databases") or [])
    sync.seed_state("default", name, status)
    sync.seed_status("default", name, status)
    record = BudgetRecord(user_id=user, tier=Tier.FREE, generation=1)
    sync.put_budget("default", name, record)
    if sync.status_current(record, status):
        return
    await sync.enforce_users({user}, **_ports(api, rows))


class Passes:
    """Enforcement passes and the users each planned."""

    def __init__(self) -> None:
        self.planned: list[int] = []
        self._plan = budget_loop.plan_enforcement

    def __enter__(self) -> Passes:
        def counting(**kwargs: Any) -> Any:
            plan = self._plan(**kwargs)
            self.planned.append(len(plan.outcomes))
            return plan

        budget_loop.plan_enforcement = counting  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        budget_loop.plan_enforcement = self._plan


async def _start(n: int, api: ApiServer) -> dict[str, Any]:
    sync, rows = _process(n), Rows()
    before = api.patches["databasebudgets"]
    started = time.perf_counter()
    with Passes() as passes:
        await asyncio.gather(*(_resume(sync, api, rows, index) for index in range(n)))
    return {
        "status_patches": api.patches["databasebudgets"] - before,
        "row_writes": rows.writes,
        "seconds": round(time.perf_counter() - started, 3),
        "passes": len(passes.planned),
        "users_planned": sum(passes.planned),
        "_sync": sync,
    }


async def _syncs(sync: BudgetSync, api: ApiServer) -> dict[str, Any]:
    """The consumption sync's enforcement: every user, a new lastSyncTime; then once more."""
    figures: dict[str, Any] = {}
    for label, moment in (("first_sync", NOW), ("unchanged_sync", NOW)):
        sync.last_sync = moment
        rows, before = Rows(), api.patches["databasebudgets"]
        started = time.perf_counter()
        await sync.enforce(**_ports(api, rows))
        figures[f"{label}_status_patches"] = api.patches["databasebudgets"] - before
        figures[f"{label}_seconds"] = round(time.perf_counter() - started, 3)
    return figures


async def _baseline(n: int) -> dict[str, Any]:
    """The code before, handler after handler: register, then plan and write every budget."""
    sync, api, rows = _process(n), ApiServer(), Rows()
    started = time.perf_counter()
    for index in range(n):
        user = _user(index)
        sync.put_budget("default", f"budget-{user}", BudgetRecord(user_id=user, tier=Tier.FREE, generation=1))
        sync.forget_written()  # it kept no record of what it wrote
        await sync.enforce(**_ports(api, rows))
    return {
        "status_patches": api.patches["databasebudgets"],
        "row_writes": rows.writes,
        "seconds": round(time.perf_counter() - started, 3),
    }


async def main(n: int, baseline_n: int) -> dict[str, Any]:
    api = ApiServer()
    start = await _start(n, api)
    restart = await _start(n, api)  # a new process, the same objects
    syncs = await _syncs(restart.pop("_sync"), api)
    start.pop("_sync")
    sample = await _baseline(baseline_n)
    scale = (n / baseline_n) ** 2
    return {
        "n_budgets": n,
        "status_patches_start": start["status_patches"],
        "seconds_start": start["seconds"],
        "passes_start": start["passes"],
        "users_planned_start": start["users_planned"],
        "row_writes_start": start["row_writes"],
        "status_patches_restart_unchanged": restart["status_patches"],
        "seconds_restart_unchanged": restart["seconds"],
        "passes_restart_unchanged": restart["passes"],
        **syncs,
        "baseline_status_patches_start": n * (n + 1) // 2,
        "baseline_seconds_start": round(sample["seconds"] * scale, 1),
        "baseline_sample": {"n_budgets": baseline_n, **sample},
        "baseline_note": (
            "the code before (every handler plans and rewrites every budget registered so far) "
            f"measured on {baseline_n} budgets, handler after handler: patches B(B+1)/2 exactly, "
            "time scaled by (B / sample)^2; interleaved handlers (kopf's workers) write more"
        ),
        "api_server": "in memory (CPU only; a real API server adds a round trip per patch)",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="budgets (one user and one database each)")
    parser.add_argument("--baseline-n", type=int, default=300, help="budgets for the baseline sample")
    parser.add_argument("--output", type=Path, default=None, help="result file (default: see --full)")
    args = _quick.parse(parser, full={})  # a few seconds at full size: the same defaults
    result = asyncio.run(main(args.n, args.baseline_n)) | _quick.commit()
    out = _quick.output(args, "budget_startup.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()

"""``tenantdb adopt --dry-run``'s answer, as a table for people or one JSON document for scripts.

The JSON keys are a contract (documented in the README, "Switching over from in-app
provisioning"); ``SCHEMA_VERSION`` changes only when a key changes meaning or goes. Nothing
here holds a connection string: the survey never keeps one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from tenantdb.reconcile.adoption.survey import Action, Inconsistency, Survey, TenantPlan
from tenantdb.reconcile.adoption.switch_on import Progress

__all__ = ["SCHEMA_VERSION", "as_json", "as_text", "counts", "progress_json", "progress_text"]

SCHEMA_VERSION: Final = 1

_COUNT_KEYS: Final = {
    Action.ADOPT: "adopt",
    Action.CREATE: "create",
    Action.LEAVE_ALONE: "leaveAlone",
    Action.BLOCKED: "blocked",
}


def _tenant(plan: TenantPlan) -> dict[str, Any]:
    return {
        "action": plan.action.value,
        "scope": plan.tenant.scope.owner,  # user | workspace
        "tenantId": plan.tenant.id,
        "userId": plan.user_id,
        "kind": plan.kind,
        "namespace": plan.namespace,
        "name": plan.name,
        "projectId": plan.project_id,
        "projectName": plan.project_name,
        "ownershipType": plan.ownership_type,
        "why": plan.why,
    }


def _inconsistency(found: Inconsistency) -> dict[str, Any]:
    return {
        "problem": found.problem.value,
        "scope": found.tenant.scope.owner if found.tenant else None,
        "tenantId": found.tenant.id if found.tenant else None,
        "projectId": found.project_id,
        "projectName": found.project_name,
        "detail": found.detail,
    }


def counts(result: Survey) -> dict[str, int]:
    numbers = {key: result.count(action) for action, key in _COUNT_KEYS.items()}
    numbers["inconsistencies"] = len(result.inconsistencies)
    return numbers


def as_json(result: Survey, *, org_id: str, neon_calls: int) -> str:
    """One JSON document (stable keys; see the README)."""
    document = {
        "schemaVersion": SCHEMA_VERSION,
        "dryRun": True,
        "orgId": org_id,
        "neonCalls": neon_calls,
        "sim": {
            "users": result.users,
            "liveWorkspaces": result.live_workspaces,
            "archivedWorkspaces": result.archived_workspaces,
        },
        "rows": {"platform": result.platform_rows, "userOwned": result.user_owned_rows},
        "projects": {"listed": result.projects_listed, "namedAsOurs": result.projects_ours},
        "counts": counts(result),
        "tenants": [_tenant(plan) for plan in result.tenants],
        "inconsistencies": [_inconsistency(found) for found in result.inconsistencies],
    }
    return json.dumps(document, indent=2)


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]


def as_text(result: Survey, *, org_id: str, neon_calls: int) -> str:
    number = counts(result)
    lines = [
        "tenantdb adopt --dry-run: nothing was written.",
        f"Sim: {result.users} users, {result.live_workspaces} live workspaces "
        f"({result.archived_workspaces} archived); rows: {result.platform_rows} platform, "
        f"{result.user_owned_rows} user-owned",
        f"Neon: {result.projects_listed} projects in organisation {org_id or '-'} "
        f"({result.projects_ours} named as ours), {neon_calls} API calls",
        "",
        f"  adopt            {number['adopt']}",
        f"  create           {number['create']}",
        f"  leave alone      {number['leaveAlone']}",
        f"  blocked          {number['blocked']}",
        f"  inconsistencies  {number['inconsistencies']}",
    ]
    if result.tenants:
        plans: list[tuple[str, ...]] = [("ACTION", "TENANT", "PROJECT", "RESOURCE", "WHY")]
        plans += [
            (
                plan.action.value,
                plan.tenant.label,
                plan.project_id or "-",
                f"{plan.kind} {plan.namespace}/{plan.name}",
                plan.why,
            )
            for plan in result.tenants
        ]
        lines += ["", *_table(plans)]
    if result.inconsistencies:
        found: list[tuple[str, ...]] = [("INCONSISTENCY", "PROJECT", "DETAIL")]
        found += [(i.problem.value, i.project_id or "-", i.detail) for i in result.inconsistencies]
        lines += ["", *_table(found)]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def progress_json(progress: Progress, *, now: float, final: bool = False) -> str:
    """One line of ``tenantdb adopt --output json`` (stable keys; see the README)."""
    left = progress.seconds_left(now)
    return json.dumps(
        {
            "wanted": progress.wanted,
            "exist": progress.exist,
            "created": progress.created,
            "existing": progress.existing,
            "ready": progress.ready,
            "createsPerSecond": round(progress.create_rate(now), 2),
            "readyPerSecond": round(progress.ready_rate(now), 2),
            "secondsLeft": None if left is None else round(left, 1),
            "elapsedSeconds": round(now - progress.started, 1),
            "final": final,
            "done": progress.done,
        }
    )


def progress_text(progress: Progress, *, now: float, final: bool = False) -> str:
    """One line of ``tenantdb adopt``'s progress."""
    counts = (
        f"{progress.exist} of {progress.wanted} exist ({progress.created} created now, "
        f"{progress.existing} already there), {progress.ready} Ready"
    )
    elapsed = _duration(now - progress.started)
    if final and progress.done:
        return f"adopt: done in {elapsed}: {counts}"
    if final:
        return f"adopt: stopped after {elapsed}, not done: {counts}; run tenantdb adopt again to go on"
    left = progress.seconds_left(now)
    rate = (
        f"{progress.create_rate(now):.1f} creates/s"
        if progress.exist < progress.wanted
        else f"{progress.ready_rate(now):.1f} Ready/s"
    )
    eta = "time left unknown" if left is None else f"about {_duration(left)} left"
    return f"adopt: {counts}; {rate}; {eta}"

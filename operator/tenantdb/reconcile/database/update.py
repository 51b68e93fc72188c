"""Update: the project's compute endpoint, waited for, then brought to the spec and the
user's tier (its settings: ``Plan.wanted``) and to the budget (its ``disabled`` flag),
patching only what drifted; then the project's own settings the tier sets (history
retention, quotas), sent only when they differ from what the status records as applied.

The budget's word is read under the project's lock, just before the patch
(``endpoint_budget.settle_endpoint``): the budget loop may have switched it since this
reconcile began.
"""

from __future__ import annotations

from typing import Any

from tenantdb.reconcile.database.errors import outside_errors
from tenantdb.reconcile.database.model import (
    Created,
    DatabaseDeps,
    DatabaseObject,
    Owned,
    TakenOver,
    Updated,
)
from tenantdb.reconcile.endpoint_budget import EndpointSettled, read_write_endpoint, settle_endpoint
from tenantdb.reconcile.errors import NeedsUserAction, RetryLater
from tenantdb.reconcile.ports import Events
from tenantdb.reconcile.reasons import Reason
from tenantdb.reconcile.tiers import SettingsWanted, project_changes

__all__ = ["compute_drift", "update", "update_endpoint", "update_project"]


async def update(
    obj: DatabaseObject, deps: DatabaseDeps, events: Events, project: Owned, wanted: SettingsWanted
) -> Updated:
    """Wait for the project's endpoint, then patch what drifted."""
    endpoint, branch_id = await _endpoint(obj, deps, project)
    # A settings change Neon refuses leaves a working database: it is reported in Synced,
    # Ready stays true, and the connection string is still published.
    refused: NeedsUserAction | None = None
    try:
        async with outside_errors("updating the compute endpoint settings"):
            suspended = await update_endpoint(obj, deps, events, project.project_id, endpoint, wanted=wanted)
        async with outside_errors("updating the project settings"):
            # A project just created was created with them.
            if not isinstance(project, Created):
                await update_project(obj, deps, events, project.project_id, wanted)
    except NeedsUserAction as exc:
        refused = exc
        async with outside_errors("updating the compute endpoint (budget only)"):
            suspended = await update_endpoint(obj, deps, events, project.project_id, endpoint, wanted=None)
    return Updated(
        endpoint=endpoint,
        branch_id=branch_id,
        suspended=suspended,
        refused=refused,
        applied=wanted if refused is None else None,
    )


async def update_project(
    obj: DatabaseObject, deps: DatabaseDeps, events: Events, project_id: str, wanted: SettingsWanted
) -> None:
    """The history retention and quotas of the tier, where they differ from the status's record
    (a database without one: as it was before tiers set anything, none)."""
    retention, quotas = project_changes(wanted, SettingsWanted.from_status(obj.status.applied))
    if retention is None and not quotas:
        return
    await deps.neon.update_project_settings(project_id, history_retention_seconds=retention, quotas=quotas)
    changed = (["history_retention_seconds"] if retention is not None else []) + sorted(quotas)
    events.normal(Reason.SETTINGS_UPDATED, f"Patched Neon project settings: {', '.join(changed)}")


async def _endpoint(obj: DatabaseObject, deps: DatabaseDeps, project: Owned) -> tuple[Any, str]:
    """The read-write endpoint and the branch: from the create's answer (once its operations
    are done), else one call."""
    async with outside_errors("waiting for the Neon project"):
        if isinstance(project, Created):
            answer = project.answer
            await deps.neon.wait_for_operations(project.project_id, answer.operations)
            endpoint = read_write_endpoint(list(answer.endpoints))
            branch_id: str = answer.branch_id
        else:
            # A take-over that just read the endpoints (to find the branch) hands them on.
            known = project.endpoint if isinstance(project, TakenOver) else None
            endpoint = known or read_write_endpoint(await deps.neon.list_endpoints(project.project_id))
            branch_id = getattr(endpoint, "branch_id", "") or obj.status.branch_id or ""
        if endpoint is None:
            raise RetryLater(
                Reason.RECONCILE_ERROR, "the Neon project has no read-write compute endpoint yet", delay=15
            )
    return endpoint, branch_id


async def update_endpoint(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    project_id: str,
    endpoint: Any,
    *,
    wanted: SettingsWanted | None,
) -> bool:
    """Patch what drifted from ``wanted`` (``None``: the budget's flag only); returns whether
    the endpoint is (now) suspended for the budget.

    The budget's word is read under the project's lock (``settle_endpoint``); while it is not
    known (``None``), the endpoint's ``disabled`` flag stays as it is."""
    async with deps.neon.serialised(project_id):
        settled = await settle_endpoint(
            deps.neon,
            project_id,
            decision=lambda: deps.is_suspended(obj.identity.user_id),
            endpoint=endpoint,
            drift=compute_drift(endpoint, wanted) if wanted is not None else {},
        )
    _patched_events(events, settled)
    return settled.suspended


def compute_drift(endpoint: Any, wanted: SettingsWanted) -> dict[str, Any]:
    """The compute settings of ``endpoint`` that differ from ``wanted`` (``update_endpoint``'s names)."""
    changes: dict[str, Any] = {}
    if endpoint.autoscaling_limit_min_cu != wanted.min_cu:
        changes["autoscaling_min_cu"] = wanted.min_cu
    if endpoint.autoscaling_limit_max_cu != wanted.max_cu:
        changes["autoscaling_max_cu"] = wanted.max_cu
    if (endpoint.suspend_timeout_seconds or 0) != wanted.suspend_timeout_seconds:
        changes["suspend_timeout_seconds"] = wanted.suspend_timeout_seconds
    return changes


def _patched_events(events: Events, settled: EndpointSettled) -> None:
    if settled.switched:
        if settled.suspended:
            events.warning(
                Reason.BUDGET_EXCEEDED, "Budget exceeded: compute endpoint disabled, connections refused"
            )
        else:
            events.normal(Reason.RESUMED, "Budget allows it again: compute endpoint enabled")
    drift = [k for k in settled.changed if k != "disabled"]
    if drift:
        events.normal(Reason.SETTINGS_UPDATED, f"Patched Neon compute settings: {', '.join(drift)}")

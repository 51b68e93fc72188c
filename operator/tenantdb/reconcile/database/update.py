"""Update: the project's compute endpoint brought to the spec (its settings) and to the
budget (its ``disabled`` flag), patching only what drifted."""

from __future__ import annotations

from typing import Any

from tenantdb.reconcile.database.model import DatabaseDeps, DatabaseObject
from tenantdb.reconcile.endpoint_budget import EndpointSettled, settle_endpoint
from tenantdb.reconcile.ports import Events
from tenantdb.reconcile.reasons import Reason

__all__ = ["update_endpoint"]


async def update_endpoint(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    project_id: str,
    endpoint: Any,
    *,
    settings_too: bool = True,
) -> bool:
    """Patch what drifted; returns whether the endpoint is (now) suspended for the budget.

    The budget's word is read under the project's lock (``settle_endpoint``); while it is not
    known (``None``), the endpoint's ``disabled`` flag stays as it is."""
    async with deps.neon.serialised(project_id):
        settled = await settle_endpoint(
            deps.neon,
            project_id,
            decision=lambda: deps.is_suspended(obj.identity.user_id),
            endpoint=endpoint,
            drift=_drift(obj, endpoint) if settings_too else {},
        )
    _patched_events(events, settled)
    return settled.suspended


def _drift(obj: DatabaseObject, endpoint: Any) -> dict[str, Any]:
    spec = obj.spec
    changes: dict[str, Any] = {}
    if endpoint.autoscaling_limit_min_cu != spec.autoscaling.min_cu:
        changes["autoscaling_min_cu"] = spec.autoscaling.min_cu
    if endpoint.autoscaling_limit_max_cu != spec.autoscaling.max_cu:
        changes["autoscaling_max_cu"] = spec.autoscaling.max_cu
    if (endpoint.suspend_timeout_seconds or 0) != spec.suspend_timeout_seconds:
        changes["suspend_timeout_seconds"] = spec.suspend_timeout_seconds
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

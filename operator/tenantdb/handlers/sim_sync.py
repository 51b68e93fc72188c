"""Start the Sim sync (``TENANTDB_SIM_SYNC=true``) as a background task of the operator.

Like every loop outside kopf's handlers, it runs through ``run_while_active`` with the
runtime's peering gate: only the active replica acts, and a paused one drops its caches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from tenantdb.api import GLOBAL_DATABASE
from tenantdb.handlers.background import run_while_active
from tenantdb.handlers.runtime import Runtime
from tenantdb.kube import CustomResources, KubeError
from tenantdb.reconcile.sim_sync import SimSync
from tenantdb.reconcile.sim_sync.loop import owned_namespaces
from tenantdb.reconcile.sim_sync.subscriptions import plan_tiers_from_objects

__all__ = ["plan_tiers_of", "start_sim_sync"]

_log = logging.getLogger(__name__)


def plan_tiers_of(runtime: Runtime) -> Callable[[], Mapping[str, str]]:
    """Sim plan -> tier, as the DatabaseTier objects claim plans (``simPlans``); while the
    cluster has none, ``TENANTDB_SIM_PLAN_TIERS`` (as the tiers themselves come from the settings
    then). Asked at every plan, so a tier's new simPlans count from the next pass on."""
    from_settings = runtime.settings.plan_tiers()

    def plan_tiers() -> Mapping[str, str]:
        objects = runtime.budgets.tiers.objects()
        if not objects:
            return from_settings
        return plan_tiers_from_objects((tier.name, tier.sim_plans) for tier in objects)

    return plan_tiers


def build_sim_sync(runtime: Runtime) -> SimSync:
    assert runtime.store is not None
    assert runtime.kube is not None
    kube = runtime.kube

    async def post_event(
        kind: str, name: str, reason: str, message: str, *, namespace: str, type_: str = "Normal"
    ) -> None:
        try:
            await kube.create_event(
                api_version=GLOBAL_DATABASE.api_version,
                kind=kind,
                namespace=namespace,
                name=name,
                type_=type_,
                reason=reason,
                message=message,
            )
        except KubeError as exc:
            _log.warning("could not post an event: %s", exc)

    return SimSync(
        settings=runtime.settings,
        tables=runtime.store,
        resources=CustomResources(kube),
        post_event=post_event,
        metrics=runtime.metrics,
        plan_tiers=plan_tiers_of(runtime),
    )


def start_sim_sync(runtime: Runtime) -> Coroutine[Any, Any, None]:
    """The Sim sync's loop (``TENANTDB_SIM_SYNC=true``), for ``Loops`` to run."""
    assert runtime.gate is not None
    sync = build_sim_sync(runtime)
    _log.info(
        "following Sim's tables into namespaces %s (writing in %s)",
        ",".join(runtime.settings.sim_sync_namespaces()),
        ",".join(owned_namespaces(runtime.settings)) or "none",
    )
    return run_while_active(
        runtime.gate,
        sync.run_pass,
        interval=runtime.settings.sim_poll_interval_seconds,
        on_paused=sync.forget,
        what="Sim sync",
    )

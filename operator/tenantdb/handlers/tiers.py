"""kopf's handler for DatabaseTier: the catalog kept current, and what a tier's change reaches.

One event handler, no finalizer and no kopf annotations on the object: a tier is read, never
owned (like a StorageClass, deleting one is not the operator's to hold up). Every event puts
the tier in the catalog (``TierCatalog``, listed whole at start-up by ``Runtime.load_tiers``),
a deletion takes it out. A change that moves anyone's budget (the limit, the compute hard
stop, the tier appearing or going) re-plans its users' budgets at once; every change wakes the
rollout, which brings the databases of its users to it (``handlers.tier_rollout``).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from tenantdb.api import DATABASE_TIER, GROUP, VERSION
from tenantdb.billing import TierDefinition
from tenantdb.handlers.driver import enforce_now
from tenantdb.handlers.runtime import Runtime
from tenantdb.reconcile.tiers import tier_definition

__all__ = ["register_tier_handlers"]

_log = logging.getLogger(__name__)


def _budget_terms(tier: TierDefinition | None) -> tuple[object, ...] | None:
    """What a budget's decision reads from a tier (``None``: the tier does not exist)."""
    if tier is None:
        return None
    return (tier.limit_cents, tier.quotas.get("compute_time_seconds"))


async def tier_event(runtime: Runtime, event_type: str | None, body: kopf.Body) -> None:
    """One watch event of a DatabaseTier (``DELETED``, or any other: it is as the body says)."""
    name = str(body.metadata.name)
    catalog = runtime.budgets.tiers
    before = runtime.budgets.policy
    had_objects = len(catalog) > 0
    if event_type == "DELETED":
        catalog.drop(name)
    else:
        definition = tier_definition(body)
        if definition is None:
            return  # the CRD's schema refuses it; an older valid one stays
        catalog.put(definition)
    after = runtime.budgets.policy
    if after == before:
        return
    _log.info("DatabaseTier %s %s", name, "removed" if after.tier(name) is None else "changed")
    if had_objects != (len(catalog) > 0):
        # The first object replaces the settings' three tiers, the last one gone brings them
        # back: every user's tier may have changed, not only this one's users'.
        users = runtime.budgets.known_users()
    elif _budget_terms(before.tier(name)) != _budget_terms(after.tier(name)):
        users = runtime.budgets.users_on(name)
    else:
        users = set()  # only what the databases follow changed: the rollout's
    if users and runtime.store is not None:
        await enforce_now(runtime, users)
    runtime.tier_rollout.wake()


def register_tier_handlers(registry: kopf.OperatorRegistry) -> None:
    async def on_event(event: kopf.RawEvent, body: kopf.Body, memo: Runtime, **_: Any) -> None:
        await tier_event(memo, event.get("type"), body)

    kopf.on.event(GROUP, VERSION, DATABASE_TIER.plural, registry=registry, id="databasetier-event")(on_event)

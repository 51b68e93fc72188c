"""kopf handlers for DatabaseBudget (tier and limit in status; spend comes from the sync)."""

from __future__ import annotations

import datetime
from typing import Any

import kopf
import pydantic

from tenantdb.api import DATABASE_BUDGET, GROUP, VERSION
from tenantdb.api.budget import DatabaseBudgetSpec
from tenantdb.config import Settings
from tenantdb.handlers.runtime import Runtime
from tenantdb.reconcile import conditions as cond
from tenantdb.store import StoreError

__all__ = ["register_budget_handlers"]


def register_budget_handlers(registry: kopf.OperatorRegistry, *, settings: Settings) -> None:
    resource = (GROUP, VERSION, DATABASE_BUDGET.plural)

    async def reconcile(body: kopf.Body, memo: Runtime, logger: kopf.Logger, **_: Any) -> None:
        runtime = memo
        try:
            spec = DatabaseBudgetSpec.model_validate(dict(body.spec))
        except pydantic.ValidationError as exc:
            raise kopf.PermanentError(f"Invalid spec: {exc.error_count()} problem(s)") from None
        limit = spec.custom_limit_cents if spec.custom_limit_cents is not None \
            else settings.tier_limit_cents(spec.tier)
        assert runtime.store is not None and runtime.kube is not None
        try:
            await runtime.store.upsert_budget(user_id=spec.user_id, tier=spec.tier.value,
                                              custom_budget_cents=spec.custom_limit_cents)
        except StoreError as exc:
            raise kopf.TemporaryError(f"the metadata DB is unavailable: {exc}", delay=15) from None
        now = datetime.datetime.now(datetime.UTC)
        generation = int(body.metadata.get("generation") or 1)
        conditions = cond.set_condition(list(body.status.get("conditions") or []), kind=cond.READY, status=True,
                                        reason="Configured", message=f"Tier {spec.tier.value}", now=now,
                                        generation=generation)
        status: dict[str, Any] = {"tier": spec.tier.value, "limitCents": limit, "observedGeneration": generation,
                                  "conditions": conditions}
        await runtime.kube.patch_status(plural=DATABASE_BUDGET.plural, namespace=str(body.metadata.namespace),
                                        name=str(body.metadata.name), status=status)

    async def finalize(body: kopf.Body, memo: Runtime, **_: Any) -> None:
        user_id = str(body.spec.get("userId", ""))
        assert memo.store is not None
        try:
            await memo.store.delete_budget(user_id=user_id)
        except StoreError as exc:
            raise kopf.TemporaryError(f"the metadata DB is unavailable: {exc}", delay=15) from None

    kopf.on.resume(*resource, registry=registry, id="budget-resume")(reconcile)
    kopf.on.create(*resource, registry=registry, id="budget-create")(reconcile)
    kopf.on.update(*resource, registry=registry, id="budget-update", field="spec")(reconcile)
    kopf.on.delete(*resource, registry=registry, id="budget-delete")(finalize)

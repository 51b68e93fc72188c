"""kopf handlers for DatabaseBudget, and the one consumption-sync loop of the operator."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Coroutine
from typing import Any

import kopf
import pydantic

from tenantdb.api import DATABASE_BUDGET, GROUP, VERSION
from tenantdb.api.budget import DatabaseBudgetSpec, DatabaseBudgetStatus
from tenantdb.config import Settings
from tenantdb.handlers.background import run_while_active
from tenantdb.handlers.driver import budget_actuator, enforce_now
from tenantdb.handlers.events import event_poster
from tenantdb.handlers.organization_router import OrganizationRouter
from tenantdb.handlers.runtime import Runtime
from tenantdb.kube import KubeError
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.budget.status import write_budget_status
from tenantdb.reconcile.claims import ClaimConflict, hold_claim, parse_created
from tenantdb.reconcile.enforcement import BudgetRecord
from tenantdb.store import StoreError
from tenantdb.store.claims import Claimant

__all__ = ["register_budget_handlers", "start_budget_loop"]

_log = logging.getLogger(__name__)


def start_budget_loop(runtime: Runtime) -> Coroutine[Any, Any, None]:
    """Make the consumption sync and enforcement ready; returns its loop, for ``Loops`` to run."""
    assert runtime.store is not None
    assert runtime.kube is not None
    assert runtime.neon is not None
    settings = runtime.settings

    store, kube, gate = runtime.store, runtime.kube, runtime.gate
    assert gate is not None
    post_event = event_poster(runtime)
    runtime.budgets.loop.actuator = budget_actuator(runtime, post_event)
    runtime.budgets.loop.decision_log = store

    first = True  # the next sync is this activation's first

    def paused() -> None:
        # Another replica decides now: its word, not ours, is the truth. Until this one is
        # active again every user is "not known" and no handler here touches a disabled flag;
        # the quotas it sets may differ from those this one remembers.
        runtime.budgets.forget_decisions()
        runtime.budgets.forget_quotas()
        runtime.budgets.forget_written()

    async def activated() -> None:
        # Take up the durable word (the last active replica's), not the memory of before.
        runtime.budgets.forget_decisions()
        runtime.budgets.forget_written()
        await runtime.budgets.restore(store)
        nonlocal first
        first = True
        # Let the resume handlers register what exists before the first sync.
        await asyncio.sleep(min(settings.consumption_sync_interval_seconds, 10.0))

    async def sync() -> None:
        nonlocal first
        if first:
            first = False
            wait = runtime.budgets.first_sync_wait()
            if wait > 0:  # inside the step: a pause meanwhile cancels the wait and the sync
                _log.info("consumption sync: the last one was recent, the next is due in %.0fs", wait)
                await asyncio.sleep(wait)
        # Every organisation's projects, each asked with its own key (handlers/organization_router).
        router = OrganizationRouter(runtime)
        await runtime.budgets.sync_round(
            source=router, store=store, kube=kube, neon=router, quotas=router, post_event=post_event
        )

    return run_while_active(
        gate,
        sync,
        interval=settings.consumption_sync_interval_seconds,
        on_activated=activated,
        on_paused=paused,
        what="consumption sync and enforcement",
    )


async def _hold_budget_claim(runtime: Runtime, body: kopf.Body, user_id: str, logger: Any) -> None:
    """One DatabaseBudget per user: any other says Conflict and is ignored by the budget logic."""
    assert runtime.store is not None
    meta = body.metadata
    claimant = Claimant(
        uid=str(meta.uid),
        namespace=str(meta.namespace),
        name=str(meta.name),
        created_at=parse_created(meta.get("creationTimestamp")),
    )
    try:
        await hold_claim(
            runtime.store,
            kind=DATABASE_BUDGET.kind,
            tenant_id=user_id,
            tenant_label=f"user {user_id}",
            claimant=claimant,
        )
    except StoreError as exc:
        raise kopf.TemporaryError(f"the metadata DB is unavailable: {exc}", delay=15) from None
    except ClaimConflict as exc:
        conditions = DatabaseBudgetStatus.decode(body.status).conditions
        previous = cond.get_condition(conditions, cond.READY)
        if previous is None or previous.reason != exc.reason or previous.message != exc.message:
            kopf.warn(body, reason=exc.reason, message=exc.message)
        conditions = cond.set_not_ready(
            conditions,
            reason=exc.reason,
            message=exc.message,
            now=datetime.datetime.now(datetime.UTC),
            generation=int(meta.get("generation") or 1),
        )
        assert runtime.kube is not None
        try:
            await write_budget_status(
                runtime.kube,
                str(meta.namespace),
                str(meta.name),
                DatabaseBudgetStatus(conditions=conditions).to_patch(),
            )
        except KubeError as write_error:
            logger.warning("could not record the conflict in status: %s", write_error)
        raise kopf.TemporaryError(exc.message, delay=exc.delay) from None


def register_budget_handlers(registry: kopf.OperatorRegistry, *, settings: Settings) -> None:
    resource = (GROUP, VERSION, DATABASE_BUDGET.plural)

    async def write_claim_and_row(
        runtime: Runtime, body: kopf.Body, spec: DatabaseBudgetSpec, logger: Any
    ) -> None:
        """The user's claim, then the budget row, in the metadata DB."""
        assert runtime.store is not None
        await _hold_budget_claim(runtime, body, spec.user_id, logger)
        try:
            await runtime.store.upsert_budget(
                user_id=spec.user_id, tier=spec.tier, custom_budget_cents=spec.custom_limit_cents
            )
        except StoreError as exc:
            raise kopf.TemporaryError(f"the metadata DB is unavailable: {exc}", delay=15) from None

    async def reconcile(
        body: kopf.Body, memo: Runtime, logger: kopf.Logger, *, resuming: bool = False, **_: Any
    ) -> None:
        runtime = memo
        if body.metadata.get("deletionTimestamp"):
            return
        try:
            spec = DatabaseBudgetSpec.model_validate(dict(body.spec))
        except pydantic.ValidationError as exc:
            raise kopf.PermanentError(f"Invalid spec: {exc.error_count()} problem(s)") from None
        namespace, name, status = str(body.metadata.namespace), str(body.metadata.name), dict(body.status)
        record = BudgetRecord(
            user_id=spec.user_id,
            tier=spec.tier,
            custom_limit_cents=spec.custom_limit_cents,
            generation=int(body.metadata.get("generation") or 1),
        )
        if not resuming:
            await write_claim_and_row(runtime, body, spec, logger)
        elif not (
            runtime.budgets.status_current(record, status)
            and runtime.budget_resume.recorded(
                user_id=spec.user_id,
                holder_uid=str(body.metadata.uid),
                tier=spec.tier,
                custom_budget_cents=spec.custom_limit_cents,
            )
        ):
            async with runtime.resume_lane:
                await write_claim_and_row(runtime, body, spec, logger)
        runtime.budgets.seed_quotas(status.get("databases") or [])
        runtime.budgets.seed_state(namespace, name, status)
        runtime.budgets.seed_status(namespace, name, status)
        tier_before = runtime.budgets.tier_name(spec.user_id)
        previous = runtime.budgets.put_budget(namespace, name, record)
        if runtime.budgets.tier_name(spec.user_id) != tier_before:
            # The user moved to another tier: their databases follow it, before any backlog.
            runtime.tier_rollout.wake({spec.user_id})
        # A budget whose status records this generation and the limit in force (a resume at a
        # restart, mostly) has nothing to enforce that the next sync, which plans every user,
        # will not: enforcing it here would only rewrite its status without costs. A new or
        # changed budget is enforced now, for its user (and the one it no longer covers).
        if runtime.budgets.status_current(record, status):
            logger.debug("budget of user %s: status current, enforced at the next sync", spec.user_id)
            return
        users = {spec.user_id} | ({previous.user_id} if previous is not None else set())
        await enforce_now(runtime, users)
        logger.info("budget of user %s: tier %s", spec.user_id, spec.tier)

    async def finalize(body: kopf.Body, memo: Runtime, **_: Any) -> None:
        runtime = memo
        user_id = str(body.spec.get("userId", ""))
        dropped = runtime.budgets.drop_budget(str(body.metadata.namespace), str(body.metadata.name))
        assert runtime.store is not None
        try:
            holder = await runtime.store.get_tenant_claim(kind=DATABASE_BUDGET.kind, tenant_id=user_id)
            if holder is not None and holder.uid != str(body.metadata.uid):
                return  # another budget holds this user: its row is not ours to delete
            await runtime.store.delete_budget(user_id=user_id)
            await runtime.store.release_tenant_claim(
                kind=DATABASE_BUDGET.kind, tenant_id=user_id, holder_uid=str(body.metadata.uid)
            )
        except StoreError as exc:
            raise kopf.TemporaryError(f"the metadata DB is unavailable: {exc}", delay=15) from None
        users = {user_id} | ({dropped.user_id} if dropped is not None else set())
        await enforce_now(runtime, users)  # the user falls back to the default tier
        runtime.tier_rollout.wake(users)

    async def resume(body: kopf.Body, memo: Runtime, logger: kopf.Logger, **_: Any) -> None:
        await reconcile(body, memo, logger, resuming=True)

    kopf.on.resume(*resource, registry=registry, id="budget-resume")(resume)
    kopf.on.create(*resource, registry=registry, id="budget-create")(reconcile)
    kopf.on.update(*resource, registry=registry, id="budget-update", field="spec")(reconcile)
    kopf.on.delete(*resource, registry=registry, id="budget-delete")(finalize)

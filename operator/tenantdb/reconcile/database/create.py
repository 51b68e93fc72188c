"""Create: the Neon project, made at most once, however the create's answer goes astray.

A create is recorded (status.createAttemptedAt, and this process's memory) before it is
sent. One without a proper answer may still land in Neon until its landing window
(``Settings.create_landing_window_seconds``) has passed; until then observe looks for it by
name and no second create is sent, whichever replica or restart comes next. A create that
surely did not land (refused, or answered) is over at once: nothing to wait for.
"""

from __future__ import annotations

import datetime
from typing import Any, NoReturn

from tenantdb.api import Condition
from tenantdb.neon.errors import NeonClientError, NeonOperationFailedError, NeonTransientError
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.database.errors import outside_errors
from tenantdb.reconcile.database.model import (
    Absent,
    Created,
    DatabaseDeps,
    DatabaseObject,
    Plan,
    Replaced,
)
from tenantdb.reconcile.database.status import create_over, provisioning
from tenantdb.reconcile.errors import RetryLater
from tenantdb.reconcile.ports import Events, StatusWriter
from tenantdb.reconcile.projects import create_may_still_land
from tenantdb.reconcile.reasons import Reason

__all__ = ["create"]

# A create without a proper answer (a time-out, a dropped connection, a gateway's 502/504)
# may still be running in Neon: it may land until its landing window has passed.
_UNANSWERED = frozenset({None, 502, 504})


async def create(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    write_status: StatusWriter,
    *,
    observed: Replaced | Absent,
    plan: Plan,
    conditions: list[Condition],
    now: datetime.datetime,
) -> Created:
    """Create the project (``conditions``: Ready=False, Creating, written with the attempt)."""
    if isinstance(observed, Absent) and observed.searched:
        # The search found nothing, yet a create sent earlier may still land.
        create_may_still_land(
            obj.status,
            deps.settings,
            now,
            action="looking for the project by name before creating again",
            sent_here=deps.create_sent_at.get(obj.identity.uid),
        )
    # The attempt is on record before it is made: until it can no longer land, no second
    # create is sent, whichever replica or restart comes next.
    async with outside_errors("recording the status"):
        await write_status(provisioning(conditions, now))
    deps.create_attempts.add(obj.identity.uid)
    deps.create_sent_at[obj.identity.uid] = now
    async with outside_errors("creating the Neon project"):
        answer = await _send(obj, deps, write_status, plan, now)
    project_id = answer.project.id
    events.normal(Reason.PROJECT_CREATED, f"Created Neon project {project_id} in {plan.region}")
    return Created(project_id=project_id, answer=answer)


async def _send(
    obj: DatabaseObject, deps: DatabaseDeps, write_status: StatusWriter, plan: Plan, now: datetime.datetime
) -> Any:
    """The create call. A refusal ends the attempt; a lost answer may leave it open."""
    spec, uid = obj.spec, obj.identity.uid
    try:
        return await deps.neon.create_project(
            name=plan.name,
            region_id=plan.region,
            pg_version=plan.pg_version,
            database_name=spec.database_name,
            role_name=spec.role_name,
            autoscaling_min_cu=plan.wanted.min_cu,
            autoscaling_max_cu=plan.wanted.max_cu,
            suspend_timeout_seconds=plan.wanted.suspend_timeout_seconds,
            history_retention_seconds=plan.wanted.history_retention_seconds,
            quotas=dict(plan.wanted.quotas),
        )
    except NeonTransientError as exc:
        if exc.ambiguous:
            await _answer_lost(deps, uid, write_status, exc, now)
        await _create_is_over(deps, uid, write_status)  # refused before doing anything
        raise
    except (NeonClientError, NeonOperationFailedError):
        await _create_is_over(deps, uid, write_status)
        raise


async def _answer_lost(
    deps: DatabaseDeps, uid: str, write_status: StatusWriter, exc: NeonTransientError, now: datetime.datetime
) -> NoReturn:
    """No proper answer: the create is over if Neon answered at all, else it may still land."""
    if exc.status not in _UNANSWERED:
        # Answered (a 500, an unreadable 201): the create is over, done or not;
        # the next attempt's search tells which, no need to wait.
        await _create_is_over(deps, uid, write_status)
        raise RetryLater(
            Reason.CREATING,
            "Creating the Neon project: Neon failed to answer properly; will look "
            "for the project by name before trying again",
            delay=max(2.0, exc.retry_after or 5.0),
        ) from exc
    # No answer: Neon may have created it, or may still. Look for it by name,
    # and create again only once this create can no longer land.
    until = now + datetime.timedelta(seconds=deps.settings.create_landing_window_seconds)
    raise RetryLater(
        Reason.CREATING,
        "Creating the Neon project: no answer from Neon; will look for the project "
        f"by name (and not create it again before {cond.rfc3339(until)})",
        delay=max(2.0, exc.retry_after or 5.0),
    ) from exc


async def _create_is_over(deps: DatabaseDeps, uid: str, write_status: StatusWriter) -> None:
    """The create surely did not land (refused, or answered): nothing to wait for."""
    deps.create_sent_at.pop(uid, None)
    await write_status(create_over())

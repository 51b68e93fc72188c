"""Rotate: a new password for the database's role, from Neon, handed to publish.

When a rotation is due (``credentials``: under way, asked for by the annotation, or old enough),
each attempt does, in this order:

1. the rotation is recorded as under way in status (``credentialsRotationStartedAt``) before
   Neon is asked anything: from the moment Neon resets the password, every connection string
   on record (Secret, metadata row, env var) may be dead, and only this record tells the next
   attempt so after a crash or a lost answer;
2. Neon resets the password (``reset_password``) and the reconcile waits for its operations: the
   old password works until they finish, the new one only after;
3. the connection string with the new password (one call) goes to publish, which writes it in
   place of every cached one (``Rotated``), Secret first, then the row, then the env var;
4. ``finish``: the rotation is over (``credentialsRotatedAt``, the record cleared), said in a
   ``CredentialsRotated`` Event.

A rotation found under way is never trusted to have reached Neon or not: its attempt resets
the password again. Neon's answer to a reset is the only place its operations are named, so a
lost answer (or a crash while waiting) leaves nothing to wait for, and publishing a password
before its operations finish publishes one Neon still refuses. A second reset costs the
tenant's open connections once more, only after a failure, and ends with a password that works
published within this one attempt: a published connection string with a dead password lasts at
most from Neon's first reset to the end of the next attempt.
"""

from __future__ import annotations

import datetime

from tenantdb.api import DatabaseStatus
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.database.credentials import under_way, why_rotate
from tenantdb.reconcile.database.errors import outside_errors
from tenantdb.reconcile.database.model import DatabaseDeps, DatabaseObject, Plan, Rotated, RotationRecord
from tenantdb.reconcile.database.status import rotation_finished, rotation_started
from tenantdb.reconcile.errors import RetryLater
from tenantdb.reconcile.ports import Events, StatusWriter
from tenantdb.reconcile.reasons import Reason

__all__ = ["finish_rotation", "rotate"]


async def rotate(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    write_status: StatusWriter,
    *,
    project_id: str,
    branch_id: str,
    plan: Plan,
    by_age: bool,
) -> Rotated | None:
    """A new password, with its operations finished, when a rotation is due (see the module's
    steps); ``None`` when none is. ``by_age``: rotations due by age may run now."""
    now = deps.clock()
    why = why_rotate(obj, deps.settings, deps.rotations, by_age=by_age, now=now)
    if why is None:
        return None
    if not branch_id:
        raise RetryLater(Reason.RECONCILE_ERROR, "the Neon project's branch is not known yet", delay=15)
    # After this rotation, the annotation's present value is answered, whatever it is.
    handled = obj.rotate_request or obj.status.credentials_rotation_handled
    resumed = under_way(obj, deps.rotations) is not None
    started = obj.status.credentials_rotation_started_at if resumed else None
    started = started or _precise(now)
    status = obj.status
    if (status.credentials_rotation_started_at, status.credentials_rotation_handled) != (started, handled):
        async with outside_errors("recording the password rotation"):
            await write_status(rotation_started(started_at=started, handled=handled))
    async with outside_errors("rotating the password"):
        reset = await deps.neon.reset_password(project_id, branch_id, plan.role_name)
        # The old password works until these finish, the new one only after: published once they have.
        await deps.neon.wait_for_operations(project_id, reset.operations)
        uri = await deps.neon.get_connection_uri(
            project_id, database_name=plan.database_name, role_name=plan.role_name
        )
    return Rotated(uri=uri, started_at=started, handled=handled)


def finish_rotation(
    obj: DatabaseObject, deps: DatabaseDeps, events: Events, rotated: Rotated | None, plan: Plan
) -> DatabaseStatus | None:
    """Once publish wrote the new connection string everywhere: the rotation over, in this
    process's memory at once and in the status the reconcile ends with (``None``: nothing to
    record). A status that still says "under way" for a rotation this process finished (its
    final write failed) is brought up to date the same way, without rotating again."""
    uid = obj.identity.uid
    if rotated is not None:
        at = deps.clock()
        deps.rotations[uid] = RotationRecord(
            started_at=rotated.started_at, rotated_at=at, handled=rotated.handled
        )
        events.normal(
            Reason.CREDENTIALS_ROTATED,
            f"Rotated the password of role {plan.role_name}: the new connection string is in Secret "
            f"{plan.secret_name}, the metadata row and {obj.identity.tenant.env_var}; the old password "
            "is refused",
        )
        return rotation_finished(rotated_at=at, handled=rotated.handled)
    finished = deps.rotations.get(uid)
    status = obj.status
    if finished is None:
        return None
    recorded = cond.parse_rfc3339(status.credentials_rotated_at)
    behind = status.credentials_rotation_started_at == finished.started_at or (
        recorded is None or recorded < finished.rotated_at.replace(microsecond=0)
    )
    if not behind:
        return None
    handled = finished.handled if finished.handled is not None else status.credentials_rotation_handled
    return rotation_finished(rotated_at=finished.rotated_at, handled=handled)


def _precise(moment: datetime.datetime) -> str:
    """RFC 3339 to the microsecond: the start names one rotation (two may begin within a second)."""
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

"""Rotate: a new password for the database's role, from Neon, handed to publish.

When a rotation is due (``credentials``: under way, asked for by the annotation, or old enough),
each attempt does, in this order:

1. the rotation is recorded as under way in status (``credentialsRotationStartedAt``) before
   Neon is asked anything: from the moment Neon resets the password, every connection string
   on record (Secret, metadata row, env var) may soon be dead, and only this record tells the
   next attempt so after a crash or a lost answer;
2. the connection strings as Neon gives them now (the old password in them), then the reset
   (``reset_password``); the new connection strings are made from those and the password of
   Neon's answer, without another call: from here on, every call waits in the rate limiter
   behind the rest of the fleet's work while the old password's minutes are counted;
3. publish writes them at once in place of every cached one (``Rotated``), Secret first, then
   the row, then the env var. Neon's operations are still running: the old password works until
   they finish, so a client holding a connection keeps it until Neon drops it, and then reads
   the new connection string already published. (Waiting for the operations first would leave
   the old, dead one published for as long as the poll that sees them finish waits for its
   turn: 17 s at p50 when a hundred rotations were asked for at once.) A client that connects
   anew in between is refused until the operations finish, seconds;
4. ``finish_rotation`` waits for the operations, then records the rotation over
   (``credentialsRotatedAt``, the record cleared) and says it in a ``CredentialsRotated`` Event.

A rotation found under way is never trusted to have reached Neon or not: its attempt resets
the password again. Neon's answer to a reset is the only place its new password and its
operations are named, so a lost answer (or a crash before publishing it) leaves nothing to
publish. A second reset costs the tenant's open connections once more, only after a failure,
and publishes a password that works within that attempt: a published connection string with a
dead password lasts at most from Neon's first reset to the next attempt's publish. An
operation that fails leaves the new password unused by Neon: the rotation stays under way and
the next attempt resets again.
"""

from __future__ import annotations

import datetime
from urllib.parse import quote, urlsplit, urlunsplit

from tenantdb.api import DatabaseStatus
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.database.credentials import under_way, why_rotate
from tenantdb.reconcile.database.errors import outside_errors
from tenantdb.reconcile.database.model import DatabaseDeps, DatabaseObject, Plan, Rotated, RotationRecord
from tenantdb.reconcile.database.status import rotation_finished, rotation_started
from tenantdb.reconcile.errors import RetryLater
from tenantdb.reconcile.ports import Events, StatusWriter
from tenantdb.reconcile.reasons import Reason

__all__ = ["finish_rotation", "rotate", "with_password"]


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
    """A new password (Neon's operations for it still running) when a rotation is due (see the
    module's steps); ``None`` when none is. ``by_age``: rotations due by age may run now."""
    now = deps.clock()
    why = why_rotate(obj, deps.settings, deps.rotations, by_age=by_age, now=now)
    if why is None:
        return None
    if not branch_id:
        raise RetryLater(Reason.RECONCILE_ERROR, "the Neon project's branch is not known yet", delay=15)
    # After this rotation, the annotation's present value is answered, whatever it is.
    handled = obj.rotate_request or obj.status.credentials_rotation_handled
    status = obj.status
    resumed = under_way(obj, deps.rotations) is not None
    started = (status.credentials_rotation_started_at if resumed else None) or _precise(now)
    if (status.credentials_rotation_started_at, status.credentials_rotation_handled) != (started, handled):
        async with outside_errors("recording the password rotation"):
            await write_status(rotation_started(started_at=started, handled=handled))
    async with outside_errors("rotating the password"):
        uri = await deps.neon.get_connection_uri(
            project_id, database_name=plan.database_name, role_name=plan.role_name
        )
        pooled = (
            await deps.neon.get_connection_uri(
                project_id, database_name=plan.database_name, role_name=plan.role_name, pooled=True
            )
            if obj.spec.connection_secret.include_plaintext
            else None
        )
        reset = await deps.neon.reset_password(project_id, branch_id, plan.role_name)
    password = reset.password.get_secret_value()
    return Rotated(
        uri=with_password(uri, password),
        pooled_uri=with_password(pooled, password) if pooled else None,
        operations=list(reset.operations),
        started_at=started,
        handled=handled,
    )


async def finish_rotation(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    rotated: Rotated | None,
    *,
    project_id: str,
    plan: Plan,
) -> DatabaseStatus | None:
    """Once publish wrote the new connection string everywhere: Neon's operations waited for
    (the old password is refused from then on), and the rotation over, in this process's memory
    at once and in the status the reconcile ends with (``None``: nothing to record). A status
    that still says "under way" for a rotation this process finished (its final write failed)
    is brought up to date the same way, without rotating again."""
    uid = obj.identity.uid
    if rotated is not None:
        async with outside_errors("waiting for the password reset"):
            await deps.neon.wait_for_operations(project_id, rotated.operations)
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


def with_password(uri: str, password: str) -> str:
    """``uri`` with ``password`` in place of its own (its user, host, database and options kept)."""
    parts = urlsplit(uri)
    user, _, rest = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:{quote(password, safe='')}@{rest}"))


def _precise(moment: datetime.datetime) -> str:
    """RFC 3339 to the microsecond: the start names one rotation (two may begin within a second)."""
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

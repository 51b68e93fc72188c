"""Whether a database's password is to be rotated now, and why: what the phases, the fleet's
cheap check and the handlers' resume all read the same way. Nothing here calls anything.

Three reasons, in the order they are looked at:

- a rotation under way (``status.credentialsRotationStartedAt``, recorded before Neon was asked
  to reset the password, cleared once the new connection string is published): the connection
  string on record may hold a password Neon no longer accepts, so any reconcile finishes it;
- the annotation ``tenantdb.io/rotate-credentials`` with a value not yet handled
  (``status.credentialsRotationHandled``): the same value twice rotates once;
- the password's age (``spec.credentials.rotateAfterDays``, else the operator's
  ``TENANTDB_ROTATE_CREDENTIALS_AFTER_DAYS``): only when the caller says rotations by age may
  run now (the fleet observation, paced in the background share of Neon's rate limit).

Status is the durable record; ``DatabaseDeps.rotations`` is this process's own copy of what it
finished, read beside it because kopf may hand a reconcile a body from before its status write
(two handlers of one change, a retry): such a body must neither rotate again nor keep an old
rotation "under way".
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping

from tenantdb.config import Settings
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.database.model import DatabaseObject, RotationRecord

__all__ = ["Why", "due_at", "rotation_pending", "under_way", "unhandled_request", "why_rotate"]


class Why(enum.StrEnum):
    RESUMED = "resumed"  # a rotation under way, interrupted (a crash, a lost answer, an outage)
    REQUESTED = "requested"  # the annotation
    DUE = "due"  # by age


def under_way(obj: DatabaseObject, rotations: Mapping[str, RotationRecord]) -> datetime.datetime | None:
    """When the rotation under way began; ``None`` when none is (or this process finished it)."""
    started = cond.parse_rfc3339(obj.status.credentials_rotation_started_at)
    if started is None:
        return None
    finished = rotations.get(obj.identity.uid)
    if finished is not None and finished.started_at == obj.status.credentials_rotation_started_at:
        return None  # finished here; the status saying so is not written (or not read) yet
    return started


def unhandled_request(obj: DatabaseObject, rotations: Mapping[str, RotationRecord]) -> str | None:
    """The annotation's value, when it asks for a rotation not yet made for it."""
    value = obj.rotate_request
    if value is None or value == obj.status.credentials_rotation_handled:
        return None
    finished = rotations.get(obj.identity.uid)
    if finished is not None and finished.handled == value:
        return None
    return value


def due_at(
    obj: DatabaseObject,
    settings: Settings,
    rotations: Mapping[str, RotationRecord],
    *,
    rotated_at: str | None = None,
) -> datetime.datetime | None:
    """When the password is old enough to be rotated; ``None``: never by age. Its age counts
    from the last rotation on record (``rotated_at``: a status newer than the object's, when the
    caller has one; or this process's own), else from the resource's creation."""
    days = obj.spec.credentials.rotate_after_days or settings.rotate_credentials_after_days
    if days is None:
        return None
    moments = [
        moment
        for moment in (
            cond.parse_rfc3339(obj.status.credentials_rotated_at),
            cond.parse_rfc3339(rotated_at),
        )
        if moment is not None
    ]
    finished = rotations.get(obj.identity.uid)
    if finished is not None:
        moments.append(finished.rotated_at)
    return max(moments, default=obj.created_at) + datetime.timedelta(days=days)


def rotation_pending(obj: DatabaseObject, rotations: Mapping[str, RotationRecord]) -> bool:
    """A rotation any reconcile must make now (under way, or asked for): not one that is only
    due by age, which waits for its paced turn."""
    return under_way(obj, rotations) is not None or unhandled_request(obj, rotations) is not None


def why_rotate(
    obj: DatabaseObject,
    settings: Settings,
    rotations: Mapping[str, RotationRecord],
    *,
    by_age: bool,
    now: datetime.datetime,
) -> Why | None:
    """Why this reconcile rotates the password, or ``None``: it does not."""
    if under_way(obj, rotations) is not None:
        return Why.RESUMED
    if unhandled_request(obj, rotations) is not None:
        return Why.REQUESTED
    if by_age:
        due = due_at(obj, settings, rotations)
        if due is not None and due <= now:
            return Why.DUE
    return None

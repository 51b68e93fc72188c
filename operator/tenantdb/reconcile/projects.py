"""Which Neon projects are this resource's: names are the proof, status only a hint.

Anyone with status-patch rights can write ``status.projectId``; only the operator names
projects, and it names them after the resource (``naming.project_name``, uid included). So a
project is acted on (adopted, published, recovered, deleted) only when its name is this
resource's name. The checks ride on calls a reconcile makes anyway (``GET /projects/{id}``,
the search by uid): they cost no Neon call of their own.

Also here: a create whose answer was lost may still land until its landing window has
passed (``Settings.create_landing_window_seconds``), and a project deleted outside the
operator is recovered, recreated or waited for as ``TENANTDB_ON_PROJECT_DELETED`` says.
"""

from __future__ import annotations

import datetime
from typing import Any

from tenantdb.api.databases import DatabaseStatus
from tenantdb.config import OnProjectDeleted, Settings
from tenantdb.neon.errors import NeonBadRequestError, NeonNotFoundError
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.errors import NeedsUserAction, RetryLater
from tenantdb.reconcile.naming import DatabaseIdentity, project_name
from tenantdb.reconcile.ports import Events, NeonLike
from tenantdb.reconcile.reasons import Reason

__all__ = [
    "ProjectMismatch",
    "attempted_at",
    "create_may_still_land",
    "our_name",
    "our_projects",
    "replace_deleted_project",
]


def our_name(settings: Settings, identity: DatabaseIdentity) -> str:
    """The one name this resource's project carries (never taken from status)."""
    return project_name(settings.project_name_prefix, identity)


class ProjectMismatch(NeedsUserAction):
    """``status.projectId`` names a project that is not this resource's: nothing is done with it."""

    def __init__(self, project_id: str, actual_name: str, expected_name: str) -> None:
        super().__init__(
            Reason.PROJECT_MISMATCH,
            f"status.projectId {project_id} names Neon project {actual_name!r}, not this resource's "
            f"{expected_name!r}: nothing is published from it or done to it. Remove status.projectId "
            "to let the operator find its own project by name",
            delay=30,  # one read per try; a cleared status heals within this
        )


async def our_projects(neon: NeonLike, identity: DatabaseIdentity, name: str) -> list[Any]:
    """Every live project carrying this resource's name, oldest first (one call per 400)."""
    found = [p for p in await neon.find_projects(search=identity.uid) if p.name == name]
    return sorted(found, key=lambda p: str(getattr(p, "created_at", "")))


def attempted_at(status: DatabaseStatus) -> datetime.datetime | None:
    # Unreadable: not ours to trust; a create is then made only after a search found nothing.
    return cond.parse_rfc3339(status.create_attempted_at)


def create_may_still_land(
    status: DatabaseStatus,
    settings: Settings,
    now: datetime.datetime,
    *,
    action: str,
    sent_here: datetime.datetime | None = None,
) -> None:
    """Raise ``RetryLater`` while an unrecorded create may still land in Neon.

    The attempt's time is in status (written before every create), so a restarted operator
    or another replica respects the same window; ``sent_here`` is this process's own memory
    of it, for a reconcile handed a body from before that status write.
    """
    known = [moment for moment in (attempted_at(status), sent_here) if moment is not None]
    if not known:
        return
    sent = max(known)
    window = settings.create_landing_window_seconds
    until = sent + datetime.timedelta(seconds=window)
    remaining = (until - now).total_seconds()
    if remaining <= 0:
        return
    raise RetryLater(
        Reason.CREATE_PENDING,
        f"A create sent at {cond.rfc3339(sent)} got no answer and may still land in Neon: {action} "
        f"until {cond.rfc3339(until)}",
        delay=min(remaining + 0.2, max(2.0, window / 5)),
    )


async def replace_deleted_project(
    neon: NeonLike,
    events: Events,
    settings: Settings,
    identity: DatabaseIdentity,
    *,
    project_id: str,
    name: str,
) -> str | None:
    """The recorded project is gone from Neon: its recovered id, or ``None`` to create anew.

    ``recover`` costs one list call (recoverable projects carrying this uid) and one recover
    call; ``recreate`` costs none; ``wait`` raises ``NeedsUserAction``.
    """
    policy = settings.on_project_deleted
    if policy is OnProjectDeleted.WAIT:
        raise NeedsUserAction(
            Reason.PROJECT_DELETED,
            f"Neon project {project_id} was deleted outside the operator. Recover it in Neon "
            f"(POST /projects/{project_id}/recover, within Neon's recovery window), or remove "
            "status.projectId to have a new, empty project made (TENANTDB_ON_PROJECT_DELETED=wait)",
            delay=300,
        )
    if policy is OnProjectDeleted.RECREATE:
        events.warning(
            Reason.PROJECT_RECREATED,
            f"Neon project {project_id} was deleted outside the operator; creating a new, empty "
            "project (TENANTDB_ON_PROJECT_DELETED=recreate). The old one may still be recoverable "
            f"in Neon for a few days: POST /projects/{project_id}/recover",
        )
        return None
    deleted = [p for p in await neon.find_projects(search=identity.uid, recoverable=True) if p.name == name]
    candidate = next((p for p in deleted if p.id == project_id), None) or (
        max(deleted, key=lambda p: str(getattr(p, "created_at", ""))) if deleted else None
    )
    if candidate is None:
        events.warning(
            Reason.PROJECT_RECREATED,
            f"Neon project {project_id} was deleted outside the operator and is no longer "
            "recoverable: its data is gone. Creating a new, empty project",
        )
        return None
    try:
        await neon.recover_project(candidate.id)
    except NeonBadRequestError:
        # Recovered meanwhile (a retry of ours, or a human): live again is all we need.
        await neon.get_project(candidate.id)
    except NeonNotFoundError:
        events.warning(
            Reason.PROJECT_RECREATED,
            f"Neon project {candidate.id} was deleted outside the operator and its recovery window "
            "has just ended: its data is gone. Creating a new, empty project",
        )
        return None
    events.warning(
        Reason.PROJECT_RECOVERED,
        f"Neon project {project_id} was deleted outside the operator; recovered "
        f"{candidate.id} with its data from Neon's recovery window",
    )
    return str(candidate.id)

"""Kept projects do not pile up: a project kept by ``deletionPolicy: Retain`` is deleted once it
has been kept for ``TENANTDB_RETAINED_PROJECT_RETENTION_DAYS`` (empty: kept for ever).

When it was kept is on record (``tenantdb_orphaned_project.retained_at``, written by the
finalizer, ``reconcile/database/delete.py``). Each round of the fleet sweep (once per
``TENANTDB_SWEEP_INTERVAL_SECONDS``, only on the active replica, in the fleet observation's
project list: no list of its own) deletes the retained projects past the retention, oldest
first, at most ``per_round`` of them, as background Neon calls. A project is deleted only when

- it is still named as the operator names projects (``<prefix>-<g|w>-<tenant>-<uid>``) and, if
  the record has the name it was kept under, under that name: never a project that is not ours
  or was renamed since;
- no live resource holds it again: none carries the uid in its name, none names it in
  ``spec.projectId`` or ``status.projectId``, and no metadata row or tenant claim names it
  (a platform that took it back over, or an operator adopting it right now).

Otherwise it is left, and asked about again next round. A deleted project's row leaves the table
(nothing is left behind any more), as the sweep's deletes do; a project already gone from Neon
is forgotten the same way. What happened is logged and counted by the caller.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from tenantdb.neon.errors import NeonNotFoundError
from tenantdb.reconcile.sweep import owner_uid

__all__ = ["LiveHolders", "RetainedProject", "RetentionResult", "expire_retained", "past_retention"]

RETAINED = "retained"


class RetainedProject(Protocol):
    """A row of ``tenantdb_orphaned_project`` (``tenantdb.store.OrphanRow``)."""

    @property
    def project_id(self) -> str: ...
    @property
    def project_name(self) -> str | None: ...
    @property
    def disposition(self) -> str: ...
    @property
    def retained_at(self) -> datetime.datetime | None: ...


class RetentionNeon(Protocol):
    async def get_project(self, project_id: str) -> Any: ...
    async def delete_project(self, project_id: str) -> bool: ...


class RetentionStore(Protocol):
    async def held_projects(self, project_ids: Iterable[str]) -> set[str]: ...
    async def forget_orphan(self, *, project_id: str) -> bool: ...


@dataclasses.dataclass(frozen=True)
class LiveHolders:
    """What the live database resources hold: their uids and the project ids they name."""

    uids: set[str]
    project_ids: set[str]


@dataclasses.dataclass
class RetentionResult:
    due: int = 0  # retained projects past the retention (all of them, not only this round's)
    deleted: list[str] = dataclasses.field(default_factory=list)
    gone: list[str] = dataclasses.field(default_factory=list)  # deleted outside: forgotten
    kept: dict[str, str] = dataclasses.field(default_factory=dict)  # project id -> why not deleted


def past_retention(
    rows: Iterable[RetainedProject], *, days: int, now: datetime.datetime
) -> list[RetainedProject]:
    """The retained rows kept ``days`` or more before ``now``, the longest kept first."""
    cutoff = now - datetime.timedelta(days=days)
    due = [
        row
        for row in rows
        if row.disposition == RETAINED and row.retained_at is not None and row.retained_at <= cutoff
    ]
    return sorted(due, key=lambda row: (row.retained_at, row.project_id))


async def expire_retained(
    *,
    neon: RetentionNeon,
    store: RetentionStore,
    rows: Sequence[RetainedProject],
    listed: Sequence[Any],
    live_holders: Callable[[], Awaitable[LiveHolders]],
    prefix: str,
    days: int | None,
    now: datetime.datetime,
    per_round: int,
) -> RetentionResult:
    """One round: delete up to ``per_round`` retained projects past the retention.

    ``rows`` is the orphan table, ``listed`` the fleet observation's list of the projects that
    carry our prefix (live ones). ``live_holders`` is asked only when something is due. A
    failure of Neon, the API server or the metadata DB ends the round; the next one retries.
    """
    result = RetentionResult()
    if days is None:
        return result
    due = past_retention(rows, days=days, now=now)
    result.due = len(due)
    if not due:
        return result
    batch = due[:per_round]
    holders = await live_holders()
    held = await store.held_projects(row.project_id for row in batch)
    by_id = {str(project.id): project for project in listed}
    for row in batch:
        project_id = row.project_id
        project = by_id.get(project_id)
        if project is None:
            # Not among our live projects: deleted outside the operator, or renamed to a name
            # that no longer carries our prefix. One read tells which.
            try:
                project = await neon.get_project(project_id)
            except NeonNotFoundError:
                await store.forget_orphan(project_id=project_id)
                result.gone.append(project_id)
                continue
        why = _why_not(row, project, prefix=prefix, holders=holders, held=held)
        if why is not None:
            result.kept[project_id] = why
            continue
        await neon.delete_project(project_id)
        await store.forget_orphan(project_id=project_id)
        result.deleted.append(project_id)
    return result


def _why_not(
    row: RetainedProject, project: Any, *, prefix: str, holders: LiveHolders, held: set[str]
) -> str | None:
    """Why this retained project must not be deleted, or None when it may."""
    name = str(project.name)
    uid = owner_uid(prefix, name)
    if uid is None:
        return f"named {name!r}, not as the operator names its projects"
    if row.project_name and row.project_name != name:
        return f"renamed to {name!r} since it was kept as {row.project_name!r}"
    if uid in holders.uids:
        return f"a live resource (uid {uid}) holds it again"
    if row.project_id in holders.project_ids:
        return "a live resource names it in its spec or status"
    if row.project_id in held:
        return "a metadata row or a tenant claim names it again"
    return None

"""The fleet's own check: projects carrying our name prefix whose resource no longer exists.

A create can land after its resource is gone (its answer was lost, and the resource was
deleted before the create's landing window ended, or an operator crashed in between). The
finalizer cannot see it; this check does. Each round lists every project whose name holds
the prefix (``GET /projects?search=<prefix>-``: one Neon call per 400 projects, whatever the
number of resources), then the live resources, and acts only on a project that

- is named exactly as the operator names projects (``<prefix>-<g|w>-<tenant>-<uid>``),
- carries a uid that no live GlobalDatabase or WorkspaceDatabase has, and
- is older than the grace period (longer than any create may take to land), so a resource
  whose create is being recorded right now is never mistaken for a gone one, and
- is not recorded as retained (``deletionPolicy: Retain`` kept it on purpose).

Projects are listed before resources: a resource made after the list cannot own a project
in it that is older than the grace period.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tenantdb.config import Settings, SweepAction

__all__ = ["ProjectSweeper", "SweepResult", "owner_uid", "sweep_once"]

logger = logging.getLogger(__name__)

_UID = re.compile(r"-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


class ProjectSweeper(Protocol):
    """The two Neon calls the sweep makes."""

    async def find_projects(self, *, search: str, recoverable: bool = False) -> list[Any]: ...
    async def delete_project(self, project_id: str) -> bool: ...


class OrphanRecorder(Protocol):
    async def forget_orphan(self, *, project_id: str) -> bool: ...
    async def record_orphan(
        self,
        *,
        kind: str,
        namespace: str,
        name: str,
        project_id: str,
        reason: str,
        disposition: str = "orphaned",
        project_name: str | None = None,
    ) -> None: ...


@dataclasses.dataclass(frozen=True)
class SweepResult:
    listed: int  # projects carrying the prefix
    deleted: list[str]
    recorded: list[str]


def owner_uid(prefix: str, name: str) -> str | None:
    """The resource uid a project name carries, when it is a name the operator gives."""
    if not (name.startswith(f"{prefix}-g-") or name.startswith(f"{prefix}-w-")):
        return None
    match = _UID.search(name)
    return match.group(1) if match else None


def grace_seconds(settings: Settings) -> float:
    """Twice the time a create may take to land: a project younger than this is left alone."""
    return 2 * settings.create_landing_window_seconds


async def sweep_once(
    *,
    neon: ProjectSweeper,
    store: OrphanRecorder,
    live_uids: Callable[[], Awaitable[set[str]]],
    left_behind: Callable[[], Awaitable[dict[str, str]]],
    settings: Settings,
    now: datetime.datetime,
) -> SweepResult:
    """One round. ``live_uids`` lists every database resource's uid, ``left_behind`` the
    orphan table (project id -> disposition); a failure of either aborts the round."""
    prefix = settings.project_name_prefix
    action = settings.effective_sweep_action
    listed = [p for p in await neon.find_projects(search=f"{prefix}-") if owner_uid(prefix, p.name)]
    live = await live_uids()
    recorded_before = await left_behind()
    cutoff = now - datetime.timedelta(seconds=grace_seconds(settings))
    deleted: list[str] = []
    recorded: list[str] = []
    for project in listed:
        uid = owner_uid(prefix, project.name)
        if uid is None or uid in live or _created(project) > cutoff:
            continue
        disposition = recorded_before.get(project.id)
        if disposition == "retained":
            continue  # kept on purpose
        if action is SweepAction.DELETE:
            await neon.delete_project(project.id)
            if disposition is not None:
                await store.forget_orphan(project_id=project.id)  # no longer left behind
            deleted.append(project.id)
            logger.warning(
                "deleted Neon project %s (%s): no live resource has uid %s", project.id, project.name, uid
            )
        elif action is SweepAction.RECORD and disposition is None:
            await store.record_orphan(
                kind="Unknown",
                namespace="",
                name="",
                project_id=project.id,
                reason=f"no live resource has uid {uid}",
                project_name=project.name,
            )
            recorded.append(project.id)
            logger.warning(
                "Neon project %s (%s) has no live owner: recorded as an orphan", project.id, project.name
            )
    return SweepResult(listed=len(listed), deleted=deleted, recorded=recorded)


def _created(project: Any) -> datetime.datetime:
    created = getattr(project, "created_at", None)
    if not isinstance(created, datetime.datetime):
        return datetime.datetime.max.replace(tzinfo=datetime.UTC)  # unknown age: never swept
    return created if created.tzinfo else created.replace(tzinfo=datetime.UTC)

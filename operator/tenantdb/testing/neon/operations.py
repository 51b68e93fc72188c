"""Operations that mutations start, and the 423 Locked rule they impose.

An operation is ``running`` for ``options.operation_seconds`` after it starts, then
``finished``. A project with a running operation, or with a mutation still busy on the
PostgreSQL server, answers conflicting mutations ``423 Locked`` (safe to retry, says Neon).
"""

from __future__ import annotations

import datetime

from tenantdb.testing.neon import ids
from tenantdb.testing.neon.errors import ApiError
from tenantdb.testing.neon.model import Operation, Project
from tenantdb.testing.neon.registry import Registry

__all__ = ["ensure_unlocked", "start_operations"]


_COMPUTE_ACTIONS = frozenset({"start_compute", "suspend_compute", "apply_config"})


def start_operations(
    project: Project, actions: list[str], *, seconds: float, now: datetime.datetime
) -> list[Operation]:
    """Start one operation per action, each running for ``seconds``; record and return them."""
    finishes = now + datetime.timedelta(seconds=max(0.0, seconds))
    started: list[Operation] = []
    for action in actions:
        started.append(
            Operation(
                id=ids.operation_id(),
                project_id=project.id,
                branch_id=project.branch.id,
                endpoint_id=project.endpoint.id if action in _COMPUTE_ACTIONS else None,
                action=action,
                created_at=now,
                finishes_at=finishes,
            )
        )
    project.operations.extend(started)
    return started


def ensure_unlocked(project: Project, registry: Registry, now: datetime.datetime) -> None:
    """Raise 423 when the project is busy with another operation."""
    if registry.lock(project.id).locked() or project.running_operations(now):
        raise ApiError(
            423,
            f"project {project.id!r} already has running conflicting operations, "
            "scheduling of new ones is prohibited",
        )

"""What is left of the Sim sync's plans: worked off a slice at a time, the most urgent first.

Deletes first (a user who left, a workspace archived: what people notice and pay for), then
patches (a budget's tier: money), then the events that say a resource is not ours, then creates.
A plan made while creates are still waiting keeps their order, behind the creates new in that
plan: a user who registers during a switch-on that takes hours is served next, before the users
waiting since the start (who have had their databases from before, or not had any).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tenantdb.reconcile.sim_sync.desired import DesiredResource
from tenantdb.reconcile.sim_sync.plan import ClusterResource, SyncPlan

__all__ = ["Action", "Backlog"]


class Action(StrEnum):
    """A kind of Kubernetes write of the sync (a metric label)."""

    DELETE = "delete"
    PATCH = "patch"
    CREATE = "create"


@dataclass(slots=True)
class Backlog:
    # (resource, deletionPolicy to set first or None)
    deletes: deque[tuple[ClusterResource, str | None]] = field(default_factory=deque)
    # (resource, merge patch of its spec)
    patches: deque[tuple[ClusterResource, dict[str, Any]]] = field(default_factory=deque)
    yielded: deque[ClusterResource] = field(default_factory=deque)
    creates: deque[DesiredResource] = field(default_factory=deque)

    @classmethod
    def from_plan(cls, plan: SyncPlan, *, previous: Backlog | None = None) -> Backlog:
        """The whole of ``plan`` (made against the cluster as the sync knows it, so it holds
        what ``previous`` has not done yet), creates ``previous`` had kept in its order."""
        creates = plan.create
        if previous is not None and previous.creates:
            waiting = {want.key: rank for rank, want in enumerate(previous.creates)}
            new = [want for want in creates if want.key not in waiting]
            kept = sorted((want for want in creates if want.key in waiting), key=lambda w: waiting[w.key])
            creates = new + kept
        return cls(deque(plan.delete), deque(plan.patch), deque(plan.yielded), deque(creates))

    def put_first(self, plan: SyncPlan) -> None:
        """Add a plan of new rows (creates only): its creates before those waiting."""
        self.deletes.extend(plan.delete)
        self.patches.extend(plan.patch)
        self.yielded.extend(plan.yielded)
        self.creates.extendleft(reversed(plan.create))

    def writes_left(self) -> dict[Action, int]:
        return {
            Action.DELETE: len(self.deletes),
            Action.PATCH: len(self.patches),
            Action.CREATE: len(self.creates),
        }

    def __len__(self) -> int:
        """Everything left, the events about resources not ours included."""
        return len(self.deletes) + len(self.patches) + len(self.yielded) + len(self.creates)

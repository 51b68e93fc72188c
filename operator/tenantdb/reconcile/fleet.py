"""Observation by the fleet, not by the object: what one pass over every settled resource does.

A per-object timer costs two Neon calls per resource per interval (30,000 resources at 300 s:
12,000 calls a minute, seventeen times Neon's whole budget). Instead each pass of the fleet
observation:

1. lists the projects carrying the name prefix (``GET /projects``, one call per 400): a
   resource whose recorded project is not in the list, or is there under another name, was
   deleted or renamed outside the operator and is reconciled in full (which recovers it,
   or says ``ProjectMismatch``); one that is there under its own name is *proven*, which is
   what lets the cheap check below trust ``status.projectId``;
2. checks every settled resource's Secret, metadata row and env var (Kubernetes and the
   metadata DB only, no Neon call), putting back what was deleted or changed;
3. reads back the compute settings of a few resources (a slow rotation, least recently
   observed first, ``status.observedAt``), within a budget of calls per minute;
4. rotates the passwords that are old enough (``spec.credentials.rotateAfterDays``), the most
   overdue first, within a budget of rotations per minute.

This module is the bookkeeping (which resource, which check); ``handlers.fleet`` runs it.
Process memory only: at start-up every settled resource registers again (kopf's resume) with
its ``status.observedAt``, so a restart loses nothing but the order of the local checks.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from tenantdb.reconcile.sweep import owner_uid

__all__ = ["FleetEntry", "FleetRegistry", "ListFindings", "compare_with_list"]

_NEVER = datetime.datetime.min.replace(tzinfo=datetime.UTC)


@dataclasses.dataclass
class FleetEntry:
    """What the fleet observation keeps of one database resource: small on purpose (it is held
    for every resource; the body is read again when a check needs it)."""

    kind: str
    namespace: str
    name: str
    project_id: str | None
    # When Neon was last read back for it (status.observedAt); None: never, or not recorded.
    observed_at: datetime.datetime | None = None
    # Registration order of the current project id (a counter, not a clock): a list fetched
    # before it cannot be expected to hold the project.
    since: int = 0
    # Position in the round of local checks (a counter): the least recently checked go first.
    checked: int = 0
    # When its password is old enough to be rotated; None: never by age.
    rotate_at: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class ListFindings:
    proven: dict[str, str]  # uid -> project id, listed under the resource's own name
    suspect: dict[str, str]  # uid -> why it must be reconciled in full


class FleetRegistry:
    """Every settled database resource this process knows, by uid."""

    def __init__(self) -> None:
        self._entries: dict[str, FleetEntry] = {}
        self._counter = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, uid: object) -> bool:
        return uid in self._entries

    def get(self, uid: str) -> FleetEntry | None:
        return self._entries.get(uid)

    def mark(self) -> int:
        """A point in the registration order (taken before a project list is fetched)."""
        self._counter += 1
        return self._counter

    def put(
        self,
        uid: str,
        *,
        kind: str,
        namespace: str,
        name: str,
        project_id: str | None,
        observed_at: datetime.datetime | None,
        rotate_at: datetime.datetime | None = None,
    ) -> None:
        known = self._entries.get(uid)
        if known is not None and known.project_id == project_id:
            known.rotate_at = rotate_at
            if observed_at is not None and (known.observed_at is None or observed_at > known.observed_at):
                known.observed_at = observed_at
            return
        self._entries[uid] = FleetEntry(
            kind=kind,
            namespace=namespace,
            name=name,
            project_id=project_id,
            observed_at=observed_at,
            rotate_at=rotate_at,
            since=self.mark(),
            checked=known.checked if known is not None else 0,
        )

    def items(self) -> list[tuple[str, FleetEntry]]:
        return list(self._entries.items())

    def drop(self, uid: str) -> None:
        self._entries.pop(uid, None)

    def observed(self, uid: str, at: datetime.datetime) -> None:
        entry = self._entries.get(uid)
        if entry is not None:
            entry.observed_at = at

    def checked(self, uid: str) -> None:
        entry = self._entries.get(uid)
        if entry is not None:
            entry.checked = self.mark()

    def stalest(self, count: int, *, skip: Iterable[str] = ()) -> list[str]:
        """The ``count`` resources observed longest ago (never observed first)."""
        if count <= 0:
            return []
        excluded = set(skip)
        candidates = ((uid, e) for uid, e in self._entries.items() if uid not in excluded)
        ordered = sorted(candidates, key=lambda item: item[1].observed_at or _NEVER)
        return [uid for uid, _ in ordered[:count]]

    def due_for_rotation(self, now: datetime.datetime, count: int, *, skip: Iterable[str] = ()) -> list[str]:
        """Up to ``count`` resources whose password is old enough, the most overdue first."""
        if count <= 0:
            return []
        excluded = set(skip)
        due = [
            (entry.rotate_at, uid)
            for uid, entry in self._entries.items()
            if entry.rotate_at is not None and entry.rotate_at <= now and uid not in excluded
        ]
        due.sort()
        return [uid for _, uid in due[:count]]

    def local_round(self) -> list[str]:
        """Every resource, the least recently checked first."""
        return [uid for uid, _ in sorted(self._entries.items(), key=lambda item: item[1].checked)]


def compare_with_list(
    registry: FleetRegistry, listed: Sequence[Any], *, prefix: str, listed_after: int
) -> ListFindings:
    """What a project list (complete, every page) says about each registered resource.

    ``listed_after``: the registry's mark taken before the list was fetched; a resource that
    got its project after that may be missing from the list for that reason alone.
    """
    by_uid: dict[str, Any] = {}
    by_id: dict[str, Any] = {}
    for project in listed:
        by_id[str(project.id)] = project
        uid = owner_uid(prefix, str(project.name))
        if uid is not None:
            by_uid[uid] = project
    proven: dict[str, str] = {}
    suspect: dict[str, str] = {}
    for uid, entry in registry.items():
        if not entry.project_id or entry.since > listed_after:
            continue
        own = by_uid.get(uid)
        if own is not None and str(own.id) == entry.project_id:
            proven[uid] = entry.project_id
        elif entry.project_id in by_id:
            suspect[uid] = f"Neon project {entry.project_id} is named {by_id[entry.project_id].name}"
        else:
            suspect[uid] = f"Neon project {entry.project_id} is not among the operator's projects"
    return ListFindings(proven=proven, suspect=suspect)

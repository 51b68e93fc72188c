"""Every project the emulator made, live and deleted, in creation order."""

from __future__ import annotations

import asyncio
import datetime
import itertools
from collections.abc import Iterator
from contextlib import contextmanager

from tenantdb.testing.neon import ids
from tenantdb.testing.neon.backing import NameTakenError
from tenantdb.testing.neon.errors import not_found
from tenantdb.testing.neon.model import Project

__all__ = ["Registry"]


class Registry:
    """Projects by id, plus the bookkeeping of creates still in flight."""

    def __init__(self) -> None:
        self._projects: dict[str, Project] = {}
        self._seq = itertools.count(1)
        self._database_ids = itertools.count(1)
        self._locks: dict[str, asyncio.Lock] = {}
        self.pending: dict[str, tuple[str, str]] = {}
        """Creates in flight: project id -> (physical database, physical role)."""
        self.pending_orgs: dict[str, str] = {}
        """Creates in flight: project id -> organisation (they count against its limit)."""
        self.abandoned: list[tuple[str, str]] = []
        """(database, role) of creates that failed half-way; dropped on stop."""

    # -- creating ----------------------------------------------------------------------------
    def new_project_id(self) -> str:
        """A fresh id whose digits no other project uses (they make the physical names unique)."""
        taken = {pid.rsplit("-", 1)[-1] for pid in itertools.chain(self._projects, self.pending)}
        while True:
            candidate = ids.project_id()
            if candidate.rsplit("-", 1)[-1] not in taken:
                return candidate

    def next_seq(self) -> int:
        return next(self._seq)

    def next_database_id(self) -> int:
        return next(self._database_ids)

    @contextmanager
    def creating(self, project_id: str, database: str, role: str, *, org_id: str = "") -> Iterator[None]:
        """Count a create in flight (project limits) and remember its names (cleanup on stop).

        A create cut short (cancelled by a shutdown, say) may have left its objects behind:
        its names stay in ``abandoned`` for ``stop`` to drop.
        """
        self.pending[project_id] = (database, role)
        self.pending_orgs[project_id] = org_id
        try:
            yield
        except NameTakenError:
            raise  # nothing of ours was made
        except BaseException:
            self.abandoned.append((database, role))
            raise
        finally:
            del self.pending[project_id]
            del self.pending_orgs[project_id]

    def add(self, project: Project) -> None:
        self._projects[project.id] = project

    # -- reading -----------------------------------------------------------------------------
    def get(self, project_id: str) -> Project | None:
        """A project, live or deleted."""
        return self._projects.get(project_id)

    def live_project(self, project_id: str) -> Project:
        """A live project, or the API's 404."""
        project = self._projects.get(project_id)
        if project is None or project.deleted:
            raise not_found(f"project {project_id!r} not found")
        return project

    def live(self) -> list[Project]:
        """Live projects, newest first."""
        return sorted((p for p in self._projects.values() if not p.deleted), key=lambda p: -p.seq)

    def deleted(self) -> list[Project]:
        """Deleted projects still recoverable (not yet purged), newest first."""
        return sorted(
            (p for p in self._projects.values() if p.deleted and not p.purged), key=lambda p: -p.seq
        )

    def expired(self, now: datetime.datetime, window: datetime.timedelta) -> list[Project]:
        """Deleted projects whose recovery window has passed, not yet purged."""
        return [p for p in self.deleted() if p.deleted_at is not None and p.deleted_at + window <= now]

    def all(self) -> list[Project]:
        """Every project ever made, newest first."""
        return sorted(self._projects.values(), key=lambda p: -p.seq)

    def lock(self, project_id: str) -> asyncio.Lock:
        """Held while a mutation of the project talks to PostgreSQL."""
        return self._locks.setdefault(project_id, asyncio.Lock())

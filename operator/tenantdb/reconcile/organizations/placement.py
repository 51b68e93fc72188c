"""Where a new tenant goes: the placement rule, and nothing else (pure, so it is easy to test).

The rule: among the organisations that take tenants — Ready (their key works), not
cordoned, not refused by Neon for its project limit, and with room (``maxProjects`` minus
the tenants placed there; no ``maxProjects`` means room without end) — the one with the most
room; ties go to the one holding fewest tenants, then to the name, so every replica that
sees the same pool picks the same organisation. Most room first fills the organisations
evenly as a fraction of nothing but their free space: an organisation added later takes the
new tenants until it has caught up, and a full one is never chosen.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

__all__ = ["Candidate", "choose"]


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    held: int
    max_projects: int | None
    ready: bool = True
    cordoned: bool = False
    full: bool = False
    """Neon refused a create for the organisation's project limit."""

    @property
    def room(self) -> float:
        """Tenants it may still take (``inf`` without ``maxProjects``)."""
        if self.full:
            return 0
        if self.max_projects is None:
            return math.inf
        return max(0, self.max_projects - self.held)

    @property
    def takes_tenants(self) -> bool:
        return self.ready and not self.cordoned and self.room > 0


def choose(candidates: Iterable[Candidate]) -> Candidate | None:
    """The organisation a new tenant goes to, or None when none takes tenants."""
    open_ = [candidate for candidate in candidates if candidate.takes_tenants]
    if not open_:
        return None
    return min(open_, key=lambda c: (-c.room, c.held, c.name))

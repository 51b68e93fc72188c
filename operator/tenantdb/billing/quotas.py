"""The hard stop between syncs: each project's compute quota, from its user's remaining budget.

Neon reports usage 15-60 minutes late; its per-project quota
``settings.quota.compute_time_seconds`` (CU-seconds this period) stops a project's computes
the moment it is passed, without waiting for anyone to notice. From every sync each of a
user's projects gets::

    quota = its CU-seconds so far + an equal share of what the user has left, in CU-seconds

so that, together, they cannot spend more than the user's limit, whatever the sync sees late.
Rules:

- an unlimited user gets 0, Neon's "unlimited" (a lift after an upgrade);
- a user with nothing left gets the usage so far (at least 1): 0 would mean unlimited;
- storage and transfer costs count in what is left, but only compute is capped here; a
  tier's own quotas (``DatabaseTier.spec.quotas``: storage, transfer, ...) are set on each
  project by the database path, and its compute quota lowers this one (``capped``), never
  raises it;
- the stop is armed only when it can matter (``armed``): when the user's databases, at their
  largest compute size, could spend what is left within the blind window (Neon's worst
  reporting delay plus a sync interval, twice over). A user far from the limit has no quota,
  so a fleet of mostly idle users costs no quota calls at all;
- ``needs_write`` says whether a new value is worth a Neon call: a change beyond
  ``tolerance`` CU-seconds, a lift of a quota in force, a first cap. Never "unlimited" for a
  project that was never capped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal

__all__ = [
    "NEON_MAX_CU",
    "NEON_WORST_DELAY_SECONDS",
    "UNLIMITED",
    "armed",
    "capped",
    "compute_quotas",
    "needs_write",
]

UNLIMITED = 0  # Neon: a zero quota means no quota
NEON_MAX_CU = 56.0  # the largest compute Neon runs: the bound when a database's size is unknown
NEON_WORST_DELAY_SECONDS = 3600.0  # Neon's usage counters are "up to an hour late"
_SAFETY = 2  # the blind window, counted twice


def armed(
    *,
    limit_cents: int | None,
    total_cost_cents: int,
    max_cu: Sequence[float],
    sync_interval_seconds: float,
    price_cu_hour_usd: Decimal,
) -> bool:
    """Whether the user's databases could spend what is left before the operator would know."""
    if limit_cents is None or price_cu_hour_usd <= 0:
        return False
    left = Decimal(max(0, limit_cents - total_cost_cents)) * _cu_seconds_per_cent(price_cu_hour_usd)
    blind = Decimal(str((NEON_WORST_DELAY_SECONDS + sync_interval_seconds) * _SAFETY))
    return left <= Decimal(str(sum(max_cu))) * blind


def _cu_seconds_per_cent(price_cu_hour_usd: Decimal) -> Decimal:
    return Decimal(3600) / (price_cu_hour_usd * 100)


def compute_quotas(
    *,
    project_ids: Sequence[str],
    compute_seconds: Mapping[str, int],
    limit_cents: int | None,
    total_cost_cents: int,
    price_cu_hour_usd: Decimal,
) -> dict[str, int]:
    """Each project's ``compute_time_seconds`` quota (see the module's rules)."""
    if limit_cents is None or price_cu_hour_usd <= 0:
        return dict.fromkeys(project_ids, UNLIMITED)
    if not project_ids:
        return {}
    remaining_cents = max(0, limit_cents - total_cost_cents)
    remaining = Decimal(remaining_cents) * _cu_seconds_per_cent(price_cu_hour_usd)
    share = math.floor(remaining / len(project_ids))
    return {p: max(1, compute_seconds.get(p, 0) + share) for p in project_ids}


def capped(quotas: Mapping[str, int], cap: int | None) -> dict[str, int]:
    """Each quota no higher than the tier's ``cap`` (``None`` or 0: no cap); unlimited becomes the cap."""
    if not cap:
        return dict(quotas)
    return {
        project: cap if seconds == UNLIMITED else min(seconds, cap) for project, seconds in quotas.items()
    }


def needs_write(previous: int | None, new: int, *, tolerance: int) -> bool:
    """Whether to send ``new`` when ``previous`` (None: unknown) is in force."""
    if previous is None or previous == UNLIMITED:
        return new != UNLIMITED  # never capped (as far as known): only a cap is news
    if new == UNLIMITED:
        return True  # lift the quota in force
    return abs(new - previous) > tolerance

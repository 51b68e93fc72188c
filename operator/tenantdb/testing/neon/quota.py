"""Project quotas as Neon enforces them: the hard stop.

When a project's ``compute_time_seconds`` this period passes a positive
``settings.quota.compute_time_seconds``, Neon suspends all of its computes and they stay
suspended (a connection does not wake them) until the quota rises or the period ends.
Zero or absent means unlimited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["over_compute_quota"]


def over_compute_quota(settings: Mapping[str, Any], usage: Mapping[str, int]) -> bool:
    """Whether the project's computes are stopped by its compute quota."""
    quota = int((settings.get("quota") or {}).get("compute_time_seconds") or 0)
    return quota > 0 and usage.get("compute_unit_seconds", 0) >= quota

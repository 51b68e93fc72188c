"""Project quotas as Neon enforces them: the hard stop.

When a project's ``compute_time_seconds`` this period passes a positive
``settings.quota.compute_time_seconds``, Neon suspends all of its computes and they stay
suspended (a connection does not wake them) until the quota rises or the period ends.
Zero or absent means unlimited. Here: the project's database refuses connections (and the
open ones end) while the quota stops it; a disabled endpoint refuses them anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantdb.testing.neon.backing import PostgresBacking
from tenantdb.testing.neon.model import Project

__all__ = ["apply_quota_stop", "over_compute_quota"]


def over_compute_quota(settings: Mapping[str, Any], usage: Mapping[str, int]) -> bool:
    """Whether the project's computes are stopped by its compute quota."""
    quota = int((settings.get("quota") or {}).get("compute_time_seconds") or 0)
    return quota > 0 and usage.get("compute_unit_seconds", 0) >= quota


async def apply_quota_stop(project: Project, backing: PostgresBacking) -> None:
    """Stop or restart the project's computes after its usage or its quota changed."""
    stopped = over_compute_quota(project.settings, project.usage)
    if stopped == project.quota_stopped:
        return
    project.quota_stopped = stopped
    if project.endpoint.disabled:
        return  # connections are refused already; enabling it again checks the quota
    await backing.set_connections_allowed(project.database.physical, allowed=not stopped)
    project.endpoint.current_state = "idle" if stopped else "active"

"""The NeonOrganization pool's loop: read the objects, check each key, write each status.

On the active replica only (its status writes and its key checks are the pool's, not each
replica's); the first refresh ran in ``Runtime.open``, before any tenant was placed.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from tenantdb.handlers.background import run_while_active
from tenantdb.handlers.runtime import Runtime

__all__ = ["start_organization_refresh"]


def start_organization_refresh(runtime: Runtime) -> Coroutine[Any, Any, None]:
    assert runtime.gate is not None
    return run_while_active(
        runtime.gate,
        runtime.refresh_organizations,
        interval=runtime.settings.organization_refresh_seconds,
        what="NeonOrganization refresh",
    )

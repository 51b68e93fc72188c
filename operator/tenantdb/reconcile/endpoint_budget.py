"""The one place a compute endpoint's ``disabled`` flag is set for a user's budget.

Both the database reconcile (``reconcile.database.update``) and the budget loop
come through ``settle_endpoint``, under the project's lock, and read the budget's word there
(``decision``): a switch decided earlier and overtaken by a newer plan is never applied.

The word is tri-state: ``True`` suspended, ``False`` allowed, ``None`` not known yet (a
restarted operator before its first sync for a user without a durable decision). Unknown
leaves the flag as it is: a restart never enables an endpoint it has not decided about.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["EndpointPort", "EndpointSettled", "read_write_endpoint", "settle_endpoint"]


class EndpointPort(Protocol):
    async def list_endpoints(self, project_id: str) -> list[Any]: ...
    async def update_endpoint(
        self,
        project_id: str,
        endpoint_id: str,
        *,
        autoscaling_min_cu: float | None = None,
        autoscaling_max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
        disabled: bool | None = None,
    ) -> list[Any]: ...
    async def wait_for_operations(
        self, project_id: str, operations: Any, *, timeout: float = 300.0
    ) -> None: ...


@dataclasses.dataclass(frozen=True)
class EndpointSettled:
    """What ``settle_endpoint`` left: the endpoint, whether it is disabled, what it changed."""

    endpoint: Any | None
    suspended: bool
    switched: bool  # the ``disabled`` flag was changed by this call
    changed: tuple[str, ...]  # every field patched (``disabled`` included)


def read_write_endpoint(endpoints: list[Any]) -> Any | None:
    """The project's read-write compute endpoint (the one connections and budgets are about)."""
    return next((e for e in endpoints if getattr(e, "type", "read_write") == "read_write"), None)


async def settle_endpoint(
    neon: EndpointPort,
    project_id: str,
    *,
    decision: Callable[[], bool | None],
    endpoint: Any | None = None,
    drift: Mapping[str, Any] | None = None,
) -> EndpointSettled:
    """Patch the endpoint's drifted settings and its ``disabled`` flag to the budget's word.

    The caller holds the project's lock (``neon.serialised(project_id)``). ``endpoint``
    ``None``: looked up (one call).
    """
    if endpoint is None:
        endpoint = read_write_endpoint(await neon.list_endpoints(project_id))
    if endpoint is None:
        return EndpointSettled(endpoint=None, suspended=False, switched=False, changed=())
    changes: dict[str, Any] = dict(drift or {})
    suspend = decision()
    disabled = bool(getattr(endpoint, "disabled", False))
    if suspend is not None and disabled != suspend:
        changes["disabled"] = suspend
    if changes:
        operations = await neon.update_endpoint(project_id, endpoint.id, **changes)
        await neon.wait_for_operations(project_id, operations)
    return EndpointSettled(
        endpoint=endpoint,
        suspended=disabled if suspend is None else suspend,
        switched="disabled" in changes,
        changed=tuple(sorted(changes)),
    )

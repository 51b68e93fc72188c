"""The database path's answer to a tier's rollout: bring one database's settings on Neon to
what its tier gives, and record them (``status.applied``).

The rollout (``tier_rollout``) found the database behind; here, the fewest Neon calls that
bring it level: the endpoint's compute settings in one patch when they differ (absolute
values, no read first: the status names the endpoint), the project's history retention and
quotas in one patch when they differ, none for a change of the tier's name alone. The calls
are not waited for: Neon applies them in order, and the client holds the project's next
mutation until they are done. The running operator calls this under the resource's own lock
(``handlers.driver.tier_actuator``), the one its reconcile holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from tenantdb.api import DatabaseStatus
from tenantdb.reconcile.endpoint_budget import EndpointPort
from tenantdb.reconcile.reasons import Reason
from tenantdb.reconcile.tier_rollout import Behind
from tenantdb.reconcile.tiers import project_changes

__all__ = ["TierSettingsPort", "apply_tier"]


class TierSettingsPort(EndpointPort, Protocol):
    """The endpoint's settings (as the budget's switch reaches them) and the project's."""

    async def update_project_settings(
        self,
        project_id: str,
        *,
        history_retention_seconds: int | None = None,
        quotas: Mapping[str, int] | None = None,
    ) -> None: ...


# kind, namespace, name, and the status fields to merge-patch (``DatabaseStatus.to_patch``)
StatusWrite = Callable[[str, str, str, DatabaseStatus], Awaitable[None]]
EventPost = Callable[[str, str, str, str, str, str], None]  # kind, namespace, name, type, reason, message


async def apply_tier(
    behind: Behind, *, neon: TierSettingsPort, write_status: StatusWrite, post_event: EventPost
) -> int:
    """Patch what differs, then record the settings; returns the Neon calls made."""
    record, wanted, applied = behind.record, behind.wanted, behind.applied
    # ``behind`` only lists databases with both.
    assert record.project_id is not None
    assert record.endpoint_id is not None
    calls = 0
    changed: list[str] = []
    if applied.compute != wanted.compute:
        await neon.update_endpoint(
            record.project_id,
            record.endpoint_id,
            autoscaling_min_cu=wanted.min_cu,
            autoscaling_max_cu=wanted.max_cu,
            suspend_timeout_seconds=wanted.suspend_timeout_seconds,
        )
        calls += 1
        changed.append(
            f"compute {wanted.min_cu:g}-{wanted.max_cu:g} CU, suspend {wanted.suspend_timeout_seconds}s"
        )
    retention, quotas = project_changes(wanted, applied)
    if retention is not None or quotas:
        await neon.update_project_settings(
            record.project_id, history_retention_seconds=retention, quotas=quotas
        )
        calls += 1
        changed.append(
            ", ".join((["history_retention_seconds"] if retention is not None else []) + sorted(quotas))
        )
    await write_status(record.kind, record.namespace, record.name, DatabaseStatus(applied=wanted.to_status()))
    if changed:
        post_event(
            record.kind,
            record.namespace,
            record.name,
            "Normal",
            Reason.SETTINGS_UPDATED,
            f"Following tier {wanted.tier}: {'; '.join(changed)}",
        )
    return calls

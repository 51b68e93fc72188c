"""The password of a project taken over (``spec.projectId``): Neon's, revealed, or reset where
Neon cannot reveal it.

Neon keeps the passwords of roles it made (the console's, the API's) and reveals them
(``reveal_password``); a role made with SQL, or a project made with ``store_passwords: false``,
has a password Neon never saw. The operator publishes a working connection string or none, so
such a role's password is reset (``reset_password``): the old one stops working once Neon's
operations finish and the role's connections are dropped. Said in a Normal Event; after a
crash between the reset and the publish, the next attempt reveals the new password (Neon
stores what it set).
"""

from __future__ import annotations

from tenantdb.reconcile.database.model import DatabaseDeps, DatabaseObject, Plan
from tenantdb.reconcile.ports import Events
from tenantdb.reconcile.reasons import Reason

__all__ = ["revealable_password"]


async def revealable_password(
    obj: DatabaseObject, deps: DatabaseDeps, events: Events, project_id: str, branch_id: str, plan: Plan
) -> None:
    """Make sure Neon can hand out the role's password (reset it when it cannot)."""
    if await deps.neon.reveal_password(project_id, branch_id, plan.role_name) is not None:
        return
    reset = await deps.neon.reset_password(project_id, branch_id, plan.role_name)
    # The new password holds once Neon's operations finish (the old one until then).
    await deps.neon.wait_for_operations(project_id, reset.operations)
    events.normal(
        Reason.PASSWORD_RESET,
        f"Neon could not reveal the password of role {plan.role_name} of the project taken over "
        f"({project_id}); reset it, and published the new connection string",
    )

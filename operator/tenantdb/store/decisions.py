"""``tenantdb_decision_log``: the operator's money and ownership decisions, one row each.

A suspend or resume for a budget, a hard stop armed or lifted, a project deleted, retained or
left behind, a project taken over, credentials rotated: who or what decided (``decided_by``),
why (``reason``), and the figures it decided on (``spend_cents``, ``limit_cents``, and any
others in ``details``). Rows are only ever added, and pruned after the retention time
(``prune``); ``tenantdb describe`` reads a tenant's latest. Never a secret: the callers write
ids, names and numbers only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from tenantdb.store.pool import Connection
from tenantdb.store.timestamps import from_db, to_db

__all__ = ["DecisionRow", "list_for", "prune", "record"]

# A prune deletes at most this many rows per statement: a year of decisions expiring at once
# never holds a long lock or a long transaction.
PRUNE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class DecisionRow:
    decided_at: datetime
    scope: str  # user | workspace: whose decision it is (the tenant's scope)
    tenant_id: str
    action: str
    decided_by: str
    reason: str
    resource: str | None = None  # "GlobalDatabase ns/name", when one resource was acted on
    project_id: str | None = None
    spend_cents: int | None = None
    limit_cents: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


async def record(conn: Connection, row: DecisionRow) -> None:
    await conn.execute(
        """
        INSERT INTO tenantdb_decision_log
            (id, decided_at, scope, tenant_id, action, decided_by, reason, resource, project_id,
             spend_cents, limit_cents, details)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (
            str(uuid.uuid4()),
            to_db(row.decided_at),
            row.scope,
            row.tenant_id,
            row.action,
            row.decided_by,
            row.reason,
            row.resource,
            row.project_id,
            row.spend_cents,
            row.limit_cents,
            Jsonb(dict(row.details)),
        ),
    )


async def list_for(
    conn: Connection, tenants: Iterable[tuple[str, str]], *, limit: int = 20
) -> list[DecisionRow]:
    """The latest ``limit`` decisions about any of these ``(scope, tenant id)``, newest first."""
    pairs = sorted(set(tenants))
    if not pairs:
        return []
    cursor = await conn.execute(
        """
        SELECT decided_at, scope, tenant_id, action, decided_by, reason, resource, project_id,
               spend_cents, limit_cents, details
        FROM tenantdb_decision_log
        WHERE (scope, tenant_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
        ORDER BY decided_at DESC, id
        LIMIT %s
        """,
        ([scope for scope, _ in pairs], [tenant for _, tenant in pairs], limit),
    )
    rows = []
    for (
        when,
        scope,
        tenant,
        action,
        by,
        reason,
        resource,
        project,
        spend,
        limit_,
        details,
    ) in await cursor.fetchall():
        decided_at = from_db(when)
        assert decided_at is not None  # NOT NULL column
        rows.append(
            DecisionRow(
                decided_at, scope, tenant, action, by, reason, resource, project, spend, limit_, details
            )
        )
    return rows


async def prune(conn: Connection, *, before: datetime) -> int:
    """Delete the decisions older than ``before``, in batches; returns how many went."""
    deleted = 0
    while True:
        cursor = await conn.execute(
            """
            DELETE FROM tenantdb_decision_log WHERE id IN (
                SELECT id FROM tenantdb_decision_log WHERE decided_at < %s LIMIT %s
            )
            """,
            (to_db(before), PRUNE_BATCH),
        )
        deleted += cursor.rowcount
        if cursor.rowcount < PRUNE_BATCH:
            return deleted

"""``tenantdb_orphaned_project``: every Neon project the operator left behind, and why.

``disposition`` says which: ``orphaned`` when a delete kept failing past the give-up time
(the finalizer is released so the Kubernetes object can go) or the fleet sweep found a
project with no live owner; ``retained`` when ``deletionPolicy: Retain`` kept it on purpose.
An administrator lists them with ``tenantdb orphans``. Recording the same project again
updates the row instead of duplicating it, so a retry after a crash is harmless.

``retained_at`` is when a retained project was kept: set when it is first recorded as retained
and kept through every later record of it as retained (a finalizer retried after a crash does
not restart the count), cleared when it is recorded otherwise. The optional retention
(``TENANTDB_RETAINED_PROJECT_RETENTION_DAYS``, ``tenantdb.reconcile.retention``) counts from it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tenantdb.store.pool import Connection
from tenantdb.store.timestamps import from_db

__all__ = ["DISPOSITIONS", "OrphanRow", "count", "forget", "list_all", "record"]

ORPHANED, RETAINED = "orphaned", "retained"
DISPOSITIONS = (ORPHANED, RETAINED)


@dataclass(frozen=True, slots=True)
class OrphanRow:
    kind: str
    namespace: str
    name: str
    project_id: str
    reason: str
    recorded_at: datetime  # when first recorded
    disposition: str = ORPHANED  # orphaned | retained
    project_name: str | None = None
    retained_at: datetime | None = None  # when deletionPolicy: Retain kept it (retained only)


async def record(
    conn: Connection,
    *,
    kind: str,
    namespace: str,
    name: str,
    project_id: str,
    reason: str,
    disposition: str = ORPHANED,
    project_name: str | None = None,
) -> None:
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition must be one of {DISPOSITIONS}, got {disposition!r}")
    await conn.execute(
        """
        INSERT INTO tenantdb_orphaned_project AS o
            (id, neon_project_id, kind, namespace, name, reason, disposition, project_name,
             retained_at, created_at, updated_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s,
                CASE WHEN %s::text = 'retained' THEN now() END, now(), now())
        ON CONFLICT (neon_project_id) DO UPDATE SET
            kind = EXCLUDED.kind, namespace = EXCLUDED.namespace, name = EXCLUDED.name,
            reason = EXCLUDED.reason, disposition = EXCLUDED.disposition,
            project_name = COALESCE(EXCLUDED.project_name, o.project_name),
            retained_at = CASE
                WHEN EXCLUDED.disposition <> 'retained' THEN NULL
                WHEN o.disposition = 'retained' THEN COALESCE(o.retained_at, EXCLUDED.retained_at)
                ELSE EXCLUDED.retained_at
            END,
            updated_at = now()
        """,
        (
            str(uuid.uuid4()),
            project_id,
            kind,
            namespace,
            name,
            reason,
            disposition,
            project_name,
            disposition,
        ),
    )


async def forget(conn: Connection, *, project_id: str) -> bool:
    """Drop a project's row (it was deleted after all); whether there was one."""
    cursor = await conn.execute(
        "DELETE FROM tenantdb_orphaned_project WHERE neon_project_id = %s", (project_id,)
    )
    return cursor.rowcount > 0


async def count(conn: Connection) -> dict[str, int]:
    """Rows per disposition (every disposition present, zero included): what the metrics show."""
    cursor = await conn.execute(
        "SELECT disposition, count(*) FROM tenantdb_orphaned_project GROUP BY disposition"
    )
    counts = dict.fromkeys(DISPOSITIONS, 0)
    for disposition, number in await cursor.fetchall():
        counts[str(disposition)] = int(number)
    return counts


async def list_all(conn: Connection) -> list[OrphanRow]:
    cursor = await conn.execute(
        """
        SELECT kind, namespace, name, neon_project_id, reason, created_at, disposition, project_name,
               retained_at
        FROM tenantdb_orphaned_project ORDER BY created_at, neon_project_id
        """
    )
    orphans = []
    for (
        kind,
        namespace,
        name,
        project_id,
        reason,
        created_at,
        disposition,
        project_name,
        retained_at,
    ) in await cursor.fetchall():
        recorded_at = from_db(created_at)
        assert recorded_at is not None  # NOT NULL column
        orphans.append(
            OrphanRow(
                kind,
                namespace,
                name,
                project_id,
                reason,
                recorded_at,
                disposition,
                project_name,
                from_db(retained_at),
            )
        )
    return orphans

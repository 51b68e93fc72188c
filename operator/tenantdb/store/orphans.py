"""``tenantdb_orphaned_project``: Neon projects the operator stopped trying to delete.

When a delete keeps failing past the give-up time the finalizer is released so that the
Kubernetes object can go, and the project is written here for a human (or a later sweep) to
clean up. Recording the same project again updates the row instead of duplicating it, so a
retry after a crash is harmless.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tenantdb.store.pool import Connection
from tenantdb.store.timestamps import from_db

__all__ = ["OrphanRow", "list_all", "record"]


@dataclass(frozen=True, slots=True)
class OrphanRow:
    kind: str
    namespace: str
    name: str
    project_id: str
    reason: str
    recorded_at: datetime  # when first recorded


async def record(
    conn: Connection, *, kind: str, namespace: str, name: str, project_id: str, reason: str
) -> None:
    await conn.execute(
        """
        INSERT INTO tenantdb_orphaned_project AS o
            (id, neon_project_id, kind, namespace, name, reason, created_at, updated_at)
        VALUES (%s, %s, %s, %s, %s, %s, now(), now())
        ON CONFLICT (neon_project_id) DO UPDATE SET
            kind = EXCLUDED.kind, namespace = EXCLUDED.namespace, name = EXCLUDED.name,
            reason = EXCLUDED.reason, updated_at = now()
        """,
        (str(uuid.uuid4()), project_id, kind, namespace, name, reason),
    )


async def list_all(conn: Connection) -> list[OrphanRow]:
    cursor = await conn.execute(
        """
        SELECT kind, namespace, name, neon_project_id, reason, created_at
        FROM tenantdb_orphaned_project ORDER BY created_at, neon_project_id
        """
    )
    orphans = []
    for kind, namespace, name, project_id, reason, created_at in await cursor.fetchall():
        recorded_at = from_db(created_at)
        assert recorded_at is not None  # NOT NULL column
        orphans.append(OrphanRow(kind, namespace, name, project_id, reason, recorded_at))
    return orphans

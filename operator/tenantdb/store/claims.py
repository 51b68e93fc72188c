"""``tenantdb_tenant_claim``: which resource holds a tenant (a user's or a workspace's database,
a user's budget), across the whole cluster.

Tenant ids are global in the platform while RBAC is per namespace, so two resources may name one
tenant. The claim decides, durably (a restart or a second replica agrees): the oldest claimant
(``creationTimestamp``) holds it, except that a holder which has already recorded a Neon project
keeps it (taking it over would strand a live database). ``creationTimestamp`` counts whole
seconds, so two resources made in the same second are equally old: the one recorded first keeps
the claim (a uid would pick one at random, and could take a working budget away from its user).
The holder's own delete releases it; the next claimant then takes it on its next attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg.errors

from tenantdb.store.errors import StoreProjectClaimedError
from tenantdb.store.pool import Connection
from tenantdb.store.timestamps import from_db, to_db

__all__ = ["Claimant", "claim", "get", "holder_of_project", "holders", "record_project", "release"]


@dataclass(frozen=True, slots=True)
class Claimant:
    """A resource that claims (or holds) a tenant."""

    uid: str
    namespace: str
    name: str
    created_at: datetime
    # The holder's Neon project, once pinned (``record_project``); then nobody takes the claim over.
    project_id: str | None = None


def _claimant(row: tuple[object, ...]) -> Claimant:
    uid, namespace, name, created_at, project_id = row
    assert isinstance(created_at, datetime)
    moment = from_db(created_at)
    assert moment is not None  # NOT NULL column
    return Claimant(
        uid=str(uid),
        namespace=str(namespace),
        name=str(name),
        created_at=moment,
        project_id=str(project_id) if project_id else None,
    )


async def claim(conn: Connection, *, kind: str, tenant_id: str, claimant: Claimant) -> Claimant:
    """Claim the tenant for ``claimant``; returns the holder afterwards (``claimant`` if it won)."""
    cursor = await conn.execute(
        """
        INSERT INTO tenantdb_tenant_claim AS c
            (kind, tenant_id, holder_uid, holder_namespace, holder_name, holder_created_at, claimed_at)
        VALUES (%s, %s, %s, %s, %s, %s, now())
        ON CONFLICT (kind, tenant_id) DO UPDATE SET
            holder_uid = EXCLUDED.holder_uid, holder_namespace = EXCLUDED.holder_namespace,
            holder_name = EXCLUDED.holder_name, holder_created_at = EXCLUDED.holder_created_at,
            neon_project_id = NULL, claimed_at = now()
        WHERE c.neon_project_id IS NULL
          AND EXCLUDED.holder_created_at < c.holder_created_at
        RETURNING holder_uid, holder_namespace, holder_name, holder_created_at, neon_project_id
        """,
        (
            kind,
            tenant_id,
            claimant.uid,
            claimant.namespace,
            claimant.name,
            to_db(claimant.created_at),
        ),
    )
    row = await cursor.fetchone()
    if row is not None:
        return _claimant(row)
    holder = await get(conn, kind=kind, tenant_id=tenant_id)
    # Released between the two statements: whoever asks next claims it.
    return holder if holder is not None else claimant


async def get(conn: Connection, *, kind: str, tenant_id: str) -> Claimant | None:
    cursor = await conn.execute(
        "SELECT holder_uid, holder_namespace, holder_name, holder_created_at, neon_project_id "
        "FROM tenantdb_tenant_claim WHERE kind = %s AND tenant_id = %s",
        (kind, tenant_id),
    )
    row = await cursor.fetchone()
    return _claimant(row) if row is not None else None


async def holders(conn: Connection, *, kind: str) -> dict[str, str]:
    """The holder's uid of every claimed tenant of ``kind`` (one read where a fleet would ask
    once per resource)."""
    cursor = await conn.execute(
        "SELECT tenant_id, holder_uid FROM tenantdb_tenant_claim WHERE kind = %s", (kind,)
    )
    return {str(tenant): str(holder) for tenant, holder in await cursor.fetchall()}


async def record_project(
    conn: Connection, *, kind: str, tenant_id: str, holder_uid: str, project_id: str
) -> bool:
    """Pin the claim to the holder's Neon project; False when ``holder_uid`` no longer holds it.

    ``StoreProjectClaimedError`` when another tenant's claim holds the project (one holder per
    project: a unique index, so two resources taking one project over at once cannot both win)."""
    try:
        cursor = await conn.execute(
            """
            UPDATE tenantdb_tenant_claim SET neon_project_id = %s
            WHERE kind = %s AND tenant_id = %s AND holder_uid = %s
            """,
            (project_id, kind, tenant_id, holder_uid),
        )
    except psycopg.errors.UniqueViolation as exc:
        raise StoreProjectClaimedError(
            f"record_project: Neon project {project_id} is held by another claim"
        ) from exc
    return cursor.rowcount > 0


async def holder_of_project(conn: Connection, *, project_id: str) -> tuple[str, str, Claimant] | None:
    """``(kind, tenant id, holder)`` of the claim pinned to the project, if any."""
    cursor = await conn.execute(
        "SELECT kind, tenant_id, holder_uid, holder_namespace, holder_name, holder_created_at, "
        "neon_project_id FROM tenantdb_tenant_claim WHERE neon_project_id = %s",
        (project_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    kind, tenant_id, *holder = row
    return str(kind), str(tenant_id), _claimant(tuple(holder))


async def release(conn: Connection, *, kind: str, tenant_id: str, holder_uid: str) -> bool:
    """Give the tenant up, if ``holder_uid`` holds it (anyone else's release changes nothing)."""
    cursor = await conn.execute(
        "DELETE FROM tenantdb_tenant_claim WHERE kind = %s AND tenant_id = %s AND holder_uid = %s",
        (kind, tenant_id, holder_uid),
    )
    return cursor.rowcount > 0

"""Read-only queries on Sim's own tables for the Sim sync (``tenantdb.reconcile.sim_sync``).

Nothing here writes Sim's tables, and nothing needs a change to Sim's schema (no trigger, no
index of ours). Two kinds of reads:

* ``fingerprint``: one statement, run every poll interval (1 s by default), whose result changes
  whenever a row the sync cares about is inserted, updated or deleted: per table a row count and
  the largest timestamps (Sim's ``user``/``workspace`` rows carry ``created_at``/``updated_at``;
  an archive sets ``archived_at`` and ``updated_at``), and a digest of the live subscriptions and
  of the organisation memberships (small tables, or small parts of them). ``environment``'s
  largest ``updated_at`` rides along: a personal save that replaced the whole object shows there.
* ``snapshot``: what Sim says should exist (every user, every live workspace with its owner and
  organisation, every live subscription, every organisation membership), read in one
  REPEATABLE READ transaction so that the parts agree. Run only when the fingerprint changed or a
  full sync is due; its cost at 100,000 users is in ``bench/sim_sync.py`` and the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from tenantdb.store.pool import Connection

__all__ = [
    "LIVE_SUBSCRIPTION_STATUSES",
    "SimSnapshot",
    "SimWorkspace",
    "fingerprint",
    "snapshot",
    "users_missing_key",
]

# Stripe's statuses in which a plan is in force (Sim's own checks use the same two).
LIVE_SUBSCRIPTION_STATUSES: Final = ("active", "trialing")

_FINGERPRINT: Final = """
SELECT
    (SELECT row(count(*), max(created_at), max(updated_at))::text FROM "user"),
    (SELECT row(count(*), count(archived_at), max(created_at), max(updated_at))::text FROM workspace),
    (SELECT md5(coalesce(string_agg(id || ':' || plan || ':' || reference_id || ':' || status, ','
                                    ORDER BY id), ''))
       FROM subscription WHERE status = ANY(%(live)s)),
    (SELECT md5(coalesce(string_agg(user_id || ':' || organization_id, ',' ORDER BY id), '')) FROM member),
    (SELECT max(updated_at)::text FROM environment)
"""


@dataclass(frozen=True, slots=True)
class SimWorkspace:
    id: str
    owner_id: str
    organization_id: str | None


@dataclass(slots=True)
class SimSnapshot:
    """Sim's live users and workspaces, live subscriptions and organisation memberships."""

    user_ids: set[str] = field(default_factory=set)
    workspaces: list[SimWorkspace] = field(default_factory=list)
    # Workspaces Sim archived (``archived_at`` set): gone for Sim, as a removed row is.
    archived_workspace_ids: set[str] = field(default_factory=set)
    # (plan, reference_id): reference_id is a user id or an organisation id.
    subscriptions: list[tuple[str, str]] = field(default_factory=list)
    # (user_id, organization_id)
    memberships: list[tuple[str, str]] = field(default_factory=list)


async def fingerprint(conn: Connection) -> tuple[str | None, ...]:
    """A value that changes whenever a row the Sim sync follows changes (see the module's doc)."""
    cursor = await conn.execute(_FINGERPRINT, {"live": list(LIVE_SUBSCRIPTION_STATUSES)})
    row = await cursor.fetchone()
    assert row is not None
    return tuple(row)


async def snapshot(conn: Connection) -> SimSnapshot:
    """Sim's state in one consistent read; ``conn`` must not be inside a transaction."""
    result = SimSnapshot()
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor = await conn.execute('SELECT id FROM "user"')
        result.user_ids = {row[0] for row in await cursor.fetchall()}
        cursor = await conn.execute(
            "SELECT id, owner_id, organization_id FROM workspace WHERE archived_at IS NULL"
        )
        result.workspaces = [SimWorkspace(*row) for row in await cursor.fetchall()]
        cursor = await conn.execute("SELECT id FROM workspace WHERE archived_at IS NOT NULL")
        result.archived_workspace_ids = {row[0] for row in await cursor.fetchall()}
        cursor = await conn.execute(
            "SELECT plan, reference_id FROM subscription WHERE status = ANY(%s)",
            (list(LIVE_SUBSCRIPTION_STATUSES),),
        )
        result.subscriptions = [(row[0], row[1]) for row in await cursor.fetchall()]
        cursor = await conn.execute("SELECT user_id, organization_id FROM member")
        result.memberships = [(row[0], row[1]) for row in await cursor.fetchall()]
    return result


async def users_missing_key(
    conn: Connection, *, key: str, since: datetime | None
) -> tuple[list[str], datetime | None]:
    """Users whose ``environment`` row changed after ``since`` (all when None), lacks ``key`` and
    who have a global database of ours; and the largest ``updated_at`` seen (the next ``since``)."""
    cursor = await conn.execute(
        """
        SELECT e.user_id FROM environment e
        JOIN user_global_database g ON g.user_id = e.user_id
        WHERE (%(since)s::timestamp IS NULL OR e.updated_at > %(since)s::timestamp)
          AND json_typeof(e.variables) = 'object'
          AND NOT (e.variables::jsonb ? %(key)s)
        """,
        {"since": since, "key": key},
    )
    users = [row[0] for row in await cursor.fetchall()]
    cursor = await conn.execute("SELECT max(updated_at) FROM environment")
    row = await cursor.fetchone()
    return users, (row[0] if row else None)

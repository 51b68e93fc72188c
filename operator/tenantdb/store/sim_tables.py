"""Read-only queries on Sim's own tables for the Sim sync (``tenantdb.reconcile.sim_sync``).

Nothing here writes Sim's tables, and nothing needs a change to Sim's schema (no trigger, no
index of ours). Three kinds of reads:

* ``fingerprint``: one statement, run every poll interval (1 s by default), whose result changes
  whenever a row the sync cares about is inserted, deleted or changed in a way it cares about:
  the row counts and largest ``created_at`` of ``user`` and ``workspace``, the number of archived
  workspaces, digests of the workspaces' organisations, of the live subscriptions and of the
  organisation memberships (small tables, or small parts of them), and ``environment``'s largest
  ``updated_at`` (a personal save that replaced the whole object shows there).
* ``new_rows``: the users and workspaces created since the last poll, with the subscriptions and
  memberships their tiers need: the cheap path of a registration.
* ``snapshot``: what Sim says should exist (every user, every live workspace with its owner and
  organisation, every live subscription, every organisation membership), read in one
  REPEATABLE READ transaction so that the parts agree. Run when a change is more than new rows,
  and for every full comparison; its cost at 100,000 users is in ``bench/sim_sync.py`` and the
  README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from tenantdb.store.pool import Connection

__all__ = [
    "LIVE_SUBSCRIPTION_STATUSES",
    "Fingerprint",
    "SimSnapshot",
    "SimWorkspace",
    "fingerprint",
    "new_rows",
    "snapshot",
    "users_missing_key",
]

# Stripe's statuses in which a plan is in force (Sim's own checks use the same two).
LIVE_SUBSCRIPTION_STATUSES: Final = ("active", "trialing")

# One scan of each table (no index of ours is needed, and Sim has none on these columns).
_FINGERPRINT: Final = """
WITH u AS (SELECT count(*) AS n, max(created_at) AS created FROM "user"),
     w AS (
        SELECT count(*) AS n, count(archived_at) AS archived, max(created_at) AS created,
               md5(coalesce(string_agg(id || ':' || organization_id, ',' ORDER BY id)
                            FILTER (WHERE organization_id IS NOT NULL), '')) AS organisations
        FROM workspace
     ),
     s AS (
        SELECT md5(coalesce(string_agg(id || ':' || plan || ':' || reference_id || ':' || status, ','
                                       ORDER BY id), '')) AS digest
        FROM subscription WHERE status = ANY(%(live)s)
     ),
     m AS (SELECT md5(coalesce(string_agg(user_id || ':' || organization_id, ',' ORDER BY id), '')) AS digest
           FROM member),
     e AS (SELECT max(updated_at) AS updated FROM environment)
SELECT u.n, u.created, w.n, w.archived, w.created, w.organisations, s.digest, m.digest, e.updated
FROM u, w, s, m, e
"""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Changes whenever a row the Sim sync follows is inserted, deleted or changed."""

    users: int
    users_created: datetime | None
    workspaces: int
    workspaces_archived: int
    workspaces_created: datetime | None
    workspace_organisations: str
    subscriptions: str
    memberships: str
    environment_updated: datetime | None

    def changes_besides_inserts(self, before: Fingerprint) -> bool:
        """Whether something other than new users and workspaces may have changed."""
        return (
            self.workspace_organisations,
            self.subscriptions,
            self.memberships,
        ) != (before.workspace_organisations, before.subscriptions, before.memberships)


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


async def fingerprint(conn: Connection) -> Fingerprint:
    """A value that changes whenever a row the Sim sync follows changes (see the module's doc).

    ``new_rows`` and ``snapshot`` return it too, read in their own transaction: the fingerprint
    remembered after a pass must describe exactly the rows the pass acted on, or a change made
    between a separate fingerprint and the rows (a user registered, then deleted again before
    the next poll) would look like no change at all.
    """
    cursor = await conn.execute(_FINGERPRINT, {"live": list(LIVE_SUBSCRIPTION_STATUSES)})
    row = await cursor.fetchone()
    assert row is not None
    return Fingerprint(*row)


async def new_rows(
    conn: Connection, *, users_after: datetime | None, workspaces_after: datetime | None
) -> tuple[Fingerprint, SimSnapshot, int, int]:
    """Users and workspaces created after the given times, with what their tiers need; and how
    many users and workspaces (archived or not) were found, to check them against the counts."""
    result = SimSnapshot()
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        seen = await fingerprint(conn)
        cursor = await conn.execute(
            'SELECT id FROM "user" WHERE %(after)s::timestamp IS NULL OR created_at > %(after)s::timestamp',
            {"after": users_after},
        )
        result.user_ids = {row[0] for row in await cursor.fetchall()}
        cursor = await conn.execute(
            "SELECT id, owner_id, organization_id, archived_at IS NOT NULL FROM workspace "
            "WHERE %(after)s::timestamp IS NULL OR created_at > %(after)s::timestamp",
            {"after": workspaces_after},
        )
        rows = await cursor.fetchall()
        result.workspaces = [SimWorkspace(row[0], row[1], row[2]) for row in rows if not row[3]]
        result.archived_workspace_ids = {row[0] for row in rows if row[3]}
        owners = sorted(result.user_ids)
        cursor = await conn.execute(
            "SELECT user_id, organization_id FROM member WHERE user_id = ANY(%s)", (owners,)
        )
        result.memberships = [(row[0], row[1]) for row in await cursor.fetchall()]
        references = set(owners) | {org for _, org in result.memberships}
        references |= {w.organization_id for w in result.workspaces if w.organization_id}
        cursor = await conn.execute(
            "SELECT plan, reference_id FROM subscription WHERE status = ANY(%s) AND reference_id = ANY(%s)",
            (list(LIVE_SUBSCRIPTION_STATUSES), sorted(references)),
        )
        result.subscriptions = [(row[0], row[1]) for row in await cursor.fetchall()]
    return seen, result, len(result.user_ids), len(rows)


async def snapshot(conn: Connection) -> tuple[Fingerprint, SimSnapshot]:
    """Sim's state and its fingerprint in one consistent read; ``conn`` must not be inside a
    transaction."""
    result = SimSnapshot()
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        seen = await fingerprint(conn)
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
    return seen, result


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

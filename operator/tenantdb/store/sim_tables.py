"""Read-only queries on Sim's own tables for the Sim sync (``tenantdb.reconcile.sim_sync``).

Nothing here writes Sim's tables, and nothing needs a change to Sim's schema (no trigger, no
index of ours). Three kinds of reads:

* ``fingerprint``: one statement, run every poll interval (1 s by default), whose result changes
  whenever a row the sync cares about is inserted, deleted or changed in a way it cares about:
  the row counts and largest ``created_at`` of ``user`` and ``workspace``, the number of archived
  workspaces, digests of the workspaces' organisations, of the subscriptions in force and of the
  organisation memberships (small tables, or small parts of them), a sum of hashes of the
  workspaces' payers (whom Sim bills for each: a sum, so that the cheap path can add the new
  rows' share and tell a new workspace from a payer that changed), and ``environment``'s largest
  ``updated_at`` (a personal save that replaced the whole object shows there).
* ``new_rows``: the users and workspaces created since the last poll, with the subscriptions and
  memberships their tiers need: the cheap path of a registration.
* ``snapshot``: what Sim says should exist (every user, every live workspace with its owner,
  payer and organisation, every subscription in force, every organisation membership), read in one
  REPEATABLE READ transaction so that the parts agree. Run when a change is more than new rows,
  and for every full comparison; its cost at 100,000 users is in ``bench/sim_sync.py`` and the
  README.

``new_rows`` and ``snapshot`` also read the tenants' metadata rows (``user_global_database`` /
``workspace_database``: ``ownership_type``, ``neon_project_id``, ``database_name``), so that a
project the platform already has is taken over rather than a second one made, and a database
the user brought is left alone. The fingerprint does not follow these rows (the operator writes
them itself all the time): a row changed behind the sync's back shows at the next snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from tenantdb.store.pool import Connection

__all__ = [
    "ENTITLED_SUBSCRIPTION_STATUSES",
    "PLATFORM_OWNERSHIP",
    "Fingerprint",
    "SimSnapshot",
    "SimWorkspace",
    "TenantRow",
    "fingerprint",
    "new_rows",
    "snapshot",
    "users_missing_key",
]

# ``ownership_type`` of a database the platform provisioned; any other value is the user's own.
PLATFORM_OWNERSHIP: Final = "platform"

# Stripe's statuses in which Sim counts a plan as in force: its ENTITLED_SUBSCRIPTION_STATUSES
# (apps/sim/lib/billing/subscriptions/utils.ts). A trial is not one of them.
ENTITLED_SUBSCRIPTION_STATUSES: Final = ("active", "past_due")

# Whom Sim bills for a workspace (lib/workspaces/utils.ts) is billed_account_user_id, which Sim
# keeps NOT NULL; the owner for a row without one (a Sim from before the column was required).
# The fingerprint sums a hash of each row's payer (32-bit, summed as bigint): it changes when a
# payer does, and the same sum over the new rows (``_NEW_WORKSPACES``, the same expression)
# says how much of a change is theirs. The payer alone, not (workspace, payer): that halves what
# the hash adds to the idle poll, and misses only two workspaces swapping payers within one poll
# (the next full pass sees it).

# One scan of each table (no index of ours is needed, and Sim has none on these columns).
_FINGERPRINT: Final = """
WITH u AS (SELECT count(*) AS n, max(created_at) AS created FROM "user"),
     w AS (
        SELECT count(*) AS n, count(archived_at) AS archived, max(created_at) AS created,
               md5(coalesce(string_agg(id || ':' || organization_id, ',' ORDER BY id)
                            FILTER (WHERE organization_id IS NOT NULL), '')) AS organisations,
               coalesce(sum(hashtext(coalesce(billed_account_user_id, owner_id))), 0) AS payers
        FROM workspace
     ),
     s AS (
        SELECT md5(coalesce(string_agg(id || ':' || plan || ':' || reference_id || ':' || status, ','
                                       ORDER BY id), '')) AS digest
        FROM subscription WHERE status = ANY(%(entitled)s)
     ),
     m AS (SELECT md5(coalesce(string_agg(user_id || ':' || organization_id, ',' ORDER BY id), '')) AS digest
           FROM member),
     e AS (SELECT max(updated_at) AS updated FROM environment)
SELECT u.n, u.created, w.n, w.archived, w.created, w.organisations, s.digest, m.digest, e.updated,
       w.payers
FROM u, w, s, m, e
"""
_NEW_WORKSPACES: Final = """
SELECT id, owner_id, organization_id, billed_account_user_id, archived_at IS NOT NULL,
       hashtext(coalesce(billed_account_user_id, owner_id))
FROM workspace WHERE %(after)s::timestamp IS NULL OR created_at > %(after)s::timestamp
"""


# Sim reads an organisation's plan only for an organisation that exists
# (getHighestPrioritySubscription): the foreign key's cascade makes that so, the join says it.
_MEMBERSHIPS: Final = (
    "SELECT m.user_id, m.organization_id FROM member m JOIN organization o ON o.id = m.organization_id"
)
_MEMBERSHIPS_OF: Final = (
    "SELECT m.user_id, m.organization_id FROM member m JOIN organization o ON o.id = m.organization_id "
    "WHERE m.user_id = ANY(%s)"
)


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
    # The sum of the workspaces' payer hashes (see the module's doc).
    workspace_payers: int = 0

    def changes_besides_inserts(self, before: Fingerprint) -> bool:
        """Whether something other than new users and workspaces may have changed. (The
        payers are not compared here: new workspaces change them too; ``payers_changed``
        tells, once the new rows are known.)"""
        return (
            self.workspace_organisations,
            self.subscriptions,
            self.memberships,
        ) != (before.workspace_organisations, before.subscriptions, before.memberships)

    def payers_changed(self, before: Fingerprint, new: SimSnapshot) -> bool:
        """Whether a payer changed besides those of ``new``'s workspaces (the rows created
        since ``before``, read with this fingerprint)."""
        return self.workspace_payers != before.workspace_payers + new.new_workspace_payers


@dataclass(frozen=True, slots=True)
class TenantRow:
    """A tenant's row in ``user_global_database`` / ``workspace_database``: written by the
    operator, or before it by the platform's own provisioning (the seed's in-app hooks)."""

    ownership_type: str
    neon_project_id: str
    database_name: str

    @property
    def platform_owned(self) -> bool:
        return self.ownership_type == PLATFORM_OWNERSHIP


@dataclass(frozen=True, slots=True)
class SimWorkspace:
    id: str
    owner_id: str
    organization_id: str | None
    # Whom Sim bills for the workspace (``billed_account_user_id``); ``None``: its owner.
    billed_account_user_id: str | None = None

    @property
    def payer_id(self) -> str:
        """The user Sim bills for this workspace."""
        return self.billed_account_user_id or self.owner_id


@dataclass(slots=True)
class SimSnapshot:
    """Sim's live users and workspaces, subscriptions in force and organisation memberships."""

    user_ids: set[str] = field(default_factory=set)
    workspaces: list[SimWorkspace] = field(default_factory=list)
    # Workspaces Sim archived (``archived_at`` set): gone for Sim, as a removed row is.
    archived_workspace_ids: set[str] = field(default_factory=set)
    # (plan, reference_id) of each subscription in force (ENTITLED_SUBSCRIPTION_STATUSES):
    # reference_id is a user id or an organisation id.
    subscriptions: list[tuple[str, str]] = field(default_factory=list)
    # (user_id, organization_id) of each membership of an organisation that exists.
    memberships: list[tuple[str, str]] = field(default_factory=list)
    # ``new_rows`` only: the sum of the payer hashes of the workspaces read (archived or not).
    new_workspace_payers: int = 0
    # The metadata rows (``user_global_database`` by user id, ``workspace_database`` by workspace
    # id): a project the platform already has, or a database the user brought.
    user_database_rows: dict[str, TenantRow] = field(default_factory=dict)
    workspace_database_rows: dict[str, TenantRow] = field(default_factory=dict)


async def fingerprint(conn: Connection) -> Fingerprint:
    """A value that changes whenever a row the Sim sync follows changes (see the module's doc).

    ``new_rows`` and ``snapshot`` return it too, read in their own transaction: the fingerprint
    remembered after a pass must describe exactly the rows the pass acted on, or a change made
    between a separate fingerprint and the rows (a user registered, then deleted again before
    the next poll) would look like no change at all.
    """
    cursor = await conn.execute(_FINGERPRINT, {"entitled": list(ENTITLED_SUBSCRIPTION_STATUSES)})
    row = await cursor.fetchone()
    assert row is not None
    users, users_created, workspaces, archived, created, organisations, plans, members, env, payers = row
    return Fingerprint(
        users,
        users_created,
        workspaces,
        archived,
        created,
        organisations,
        plans,
        members,
        env,
        workspace_payers=int(payers),
    )


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
        cursor = await conn.execute(_NEW_WORKSPACES, {"after": workspaces_after})
        rows = await cursor.fetchall()
        result.workspaces = [SimWorkspace(*row[:4]) for row in rows if not row[4]]
        result.archived_workspace_ids = {row[0] for row in rows if row[4]}
        result.new_workspace_payers = sum(int(row[5]) for row in rows)
        owners = sorted(result.user_ids)
        cursor = await conn.execute(_MEMBERSHIPS_OF, (owners,))
        result.memberships = [(row[0], row[1]) for row in await cursor.fetchall()]
        references = set(owners) | {org for _, org in result.memberships}
        cursor = await conn.execute(
            "SELECT plan, reference_id FROM subscription WHERE status = ANY(%s) AND reference_id = ANY(%s)",
            (list(ENTITLED_SUBSCRIPTION_STATUSES), sorted(references)),
        )
        result.subscriptions = [(row[0], row[1]) for row in await cursor.fetchall()]
        result.user_database_rows, result.workspace_database_rows = await _tenant_rows(
            conn, user_ids=owners, workspace_ids=[w.id for w in result.workspaces]
        )
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
            "SELECT id, owner_id, organization_id, billed_account_user_id FROM workspace "
            "WHERE archived_at IS NULL"
        )
        result.workspaces = [SimWorkspace(*row) for row in await cursor.fetchall()]
        cursor = await conn.execute("SELECT id FROM workspace WHERE archived_at IS NOT NULL")
        result.archived_workspace_ids = {row[0] for row in await cursor.fetchall()}
        cursor = await conn.execute(
            "SELECT plan, reference_id FROM subscription WHERE status = ANY(%s)",
            (list(ENTITLED_SUBSCRIPTION_STATUSES),),
        )
        result.subscriptions = [(row[0], row[1]) for row in await cursor.fetchall()]
        cursor = await conn.execute(_MEMBERSHIPS)
        result.memberships = [(row[0], row[1]) for row in await cursor.fetchall()]
        result.user_database_rows, result.workspace_database_rows = await _tenant_rows(conn)
    return seen, result


_USER_ROWS: Final = "SELECT user_id, ownership_type, neon_project_id, database_name FROM user_global_database"
_WORKSPACE_ROWS: Final = (
    "SELECT workspace_id, ownership_type, neon_project_id, database_name FROM workspace_database"
)


async def _tenant_rows(
    conn: Connection, *, user_ids: Sequence[str] | None = None, workspace_ids: Sequence[str] | None = None
) -> tuple[dict[str, TenantRow], dict[str, TenantRow]]:
    """Every metadata row (no ids given: the snapshot), else the rows of these ids (by unique key)."""
    if user_ids is None or workspace_ids is None:
        users = await conn.execute(_USER_ROWS)
        users_rows = await users.fetchall()
        workspaces = await conn.execute(_WORKSPACE_ROWS)
        workspace_rows = await workspaces.fetchall()
    else:
        users = await conn.execute(_USER_ROWS + " WHERE user_id = ANY(%s)", (list(user_ids),))
        users_rows = await users.fetchall()
        workspaces = await conn.execute(
            _WORKSPACE_ROWS + " WHERE workspace_id = ANY(%s)", (list(workspace_ids),)
        )
        workspace_rows = await workspaces.fetchall()
    return (
        {row[0]: TenantRow(row[1], row[2], row[3]) for row in users_rows},
        {row[0]: TenantRow(row[1], row[2], row[3]) for row in workspace_rows},
    )


async def users_missing_key(
    conn: Connection, *, key: str, since: datetime | None
) -> tuple[list[str], datetime | None]:
    """Users whose ``environment`` row changed after ``since`` (all when None), lacks ``key`` and
    who have a global database of the platform's (a database the user brought is theirs: its
    env var is never written); and the largest ``updated_at`` seen (the next ``since``)."""
    cursor = await conn.execute(
        """
        SELECT e.user_id FROM environment e
        JOIN user_global_database g ON g.user_id = e.user_id
        WHERE (%(since)s::timestamp IS NULL OR e.updated_at > %(since)s::timestamp)
          AND g.ownership_type = %(platform)s
          AND json_typeof(e.variables) = 'object'
          AND NOT (e.variables::jsonb ? %(key)s)
        """,
        {"since": since, "key": key, "platform": PLATFORM_OWNERSHIP},
    )
    users = [row[0] for row in await cursor.fetchall()]
    cursor = await conn.execute("SELECT max(updated_at) FROM environment")
    row = await cursor.fetchone()
    return users, (row[0] if row else None)

"""The metadata DB's schema, as an ordered list of named migrations, and the one way to apply them.

All pending migrations run in one transaction under a transaction-scoped advisory lock with a
fixed key: concurrent replicas (or a Helm hook racing the operator) queue on the lock, and the
second one finds the work recorded in ``tenantdb_schema_migrations`` and does nothing. A
transaction-scoped lock also works through PgBouncer in transaction mode, where a session lock
could be released on another server connection.

Table and column names are Sim Studio's (see ``shared/reference/sim-studio.md``): ``timestamp``
without time zone as Drizzle's ``timestamp()`` makes them, ``text`` ids the application
generates (we use UUIDs), unique constraints named the way Drizzle names them.

Sim's own ``environment`` and ``workspace_environment`` are never created in Sim's database:
Sim's Drizzle migrations create them, and would fail ("relation already exists") had we done it
first. Only a standalone metadata DB (no Sim: ``TENANTDB_STANDALONE_ENV_TABLES=true``) gets
them, from ``STANDALONE_ENV_TABLES`` (the name migration 0003 had when it ran everywhere, so a DB
that already has it records nothing new). ``check_env_tables`` says clearly at start-up when
neither Sim's tables nor the setting are there. The feature's own tables carry no foreign keys:
the parent tables need not exist in a standalone metadata DB.

Never edit a migration that has shipped; append a new one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final, LiteralString

from tenantdb.store.errors import StoreSchemaError
from tenantdb.store.pool import Connection

__all__ = [
    "ADVISORY_LOCK_KEY",
    "MIGRATIONS",
    "STANDALONE_ENV_TABLES",
    "Migration",
    "apply_migrations",
    "check_env_tables",
]

logger = logging.getLogger(__name__)

# "tenantdb" in ASCII as a bigint: fixed, so every replica and version contends for the same lock.
ADVISORY_LOCK_KEY: Final = 0x74656E616E746462


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    statements: tuple[LiteralString, ...]


_BOOKKEEPING: Final = """
CREATE TABLE IF NOT EXISTS tenantdb_schema_migrations (
    name text PRIMARY KEY,
    applied_at timestamp NOT NULL DEFAULT now()
)
"""

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        "0001_tenant_databases",
        (
            """
            CREATE TABLE IF NOT EXISTS user_global_database (
                id text PRIMARY KEY,
                user_id text NOT NULL,
                ownership_type text NOT NULL DEFAULT 'platform',
                neon_project_id text NOT NULL,
                neon_branch_id text NOT NULL,
                neon_connection_uri text NOT NULL,
                database_name text NOT NULL DEFAULT 'neondb',
                current_period_cost_cents integer NOT NULL DEFAULT 0,
                last_consumption_sync timestamp,
                created_at timestamp NOT NULL DEFAULT now(),
                updated_at timestamp NOT NULL DEFAULT now(),
                CONSTRAINT user_global_database_user_id_unique UNIQUE (user_id)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS workspace_database (
                id text PRIMARY KEY,
                workspace_id text NOT NULL,
                ownership_type text NOT NULL DEFAULT 'platform',
                neon_project_id text NOT NULL,
                neon_branch_id text NOT NULL,
                neon_connection_uri text NOT NULL,
                database_name text NOT NULL DEFAULT 'neondb',
                current_period_cost_cents integer NOT NULL DEFAULT 0,
                last_consumption_sync timestamp,
                created_at timestamp NOT NULL DEFAULT now(),
                updated_at timestamp NOT NULL DEFAULT now(),
                CONSTRAINT workspace_database_workspace_id_unique UNIQUE (workspace_id)
            )
            """,
            # The consumption sync updates costs by project id, for every project at once.
            "CREATE INDEX IF NOT EXISTS user_global_database_neon_project_id_idx "
            "ON user_global_database (neon_project_id)",
            "CREATE INDEX IF NOT EXISTS workspace_database_neon_project_id_idx "
            "ON workspace_database (neon_project_id)",
        ),
    ),
    Migration(
        "0002_db_budgets",
        (
            """
            CREATE TABLE IF NOT EXISTS user_db_budget (
                id text PRIMARY KEY,
                user_id text NOT NULL,
                budget_tier text NOT NULL DEFAULT 'free',
                custom_budget_cents integer,
                budget_exceeded boolean NOT NULL DEFAULT false,
                current_period_start timestamp NOT NULL DEFAULT now(),
                total_cost_cents integer NOT NULL DEFAULT 0,
                last_sync timestamp,
                created_at timestamp NOT NULL DEFAULT now(),
                updated_at timestamp NOT NULL DEFAULT now(),
                CONSTRAINT user_db_budget_user_id_unique UNIQUE (user_id)
            )
            """,
        ),
    ),
    Migration(
        "0004_orphaned_projects",
        (
            """
            CREATE TABLE IF NOT EXISTS tenantdb_orphaned_project (
                id text PRIMARY KEY,
                neon_project_id text NOT NULL,
                kind text NOT NULL,
                namespace text NOT NULL,
                name text NOT NULL,
                reason text NOT NULL,
                created_at timestamp NOT NULL DEFAULT now(),
                updated_at timestamp NOT NULL DEFAULT now(),
                CONSTRAINT tenantdb_orphaned_project_neon_project_id_unique UNIQUE (neon_project_id)
            )
            """,
        ),
    ),
    Migration(
        "0005_tenant_claims",
        (
            # One holder per (kind, tenant id) across the cluster: see tenantdb.store.claims.
            """
            CREATE TABLE IF NOT EXISTS tenantdb_tenant_claim (
                kind text NOT NULL,
                tenant_id text NOT NULL,
                holder_uid text NOT NULL,
                holder_namespace text NOT NULL,
                holder_name text NOT NULL,
                holder_created_at timestamp NOT NULL,
                neon_project_id text,
                claimed_at timestamp NOT NULL DEFAULT now(),
                CONSTRAINT tenantdb_tenant_claim_kind_tenant_id_pk PRIMARY KEY (kind, tenant_id)
            )
            """,
        ),
    ),
    Migration(
        "0006_orphaned_project_disposition",
        (
            # What the operator left in Neon, on purpose (deletionPolicy: Retain) or not
            # (orphaned: a delete given up on, a project found with no live owner), and the
            # project's name, for when its id could not be learnt.
            """
            ALTER TABLE tenantdb_orphaned_project
                ADD COLUMN IF NOT EXISTS disposition text NOT NULL DEFAULT 'orphaned',
                ADD COLUMN IF NOT EXISTS project_name text
            """,
        ),
    ),
    Migration(
        "0007_retained_project_kept_at",
        (
            # When deletionPolicy: Retain kept the project: what TENANTDB_RETAINED_PROJECT_RETENTION_DAYS
            # counts from. Projects kept before this column existed were kept when first recorded.
            "ALTER TABLE tenantdb_orphaned_project ADD COLUMN IF NOT EXISTS retained_at timestamp",
            "UPDATE tenantdb_orphaned_project SET retained_at = created_at "
            "WHERE disposition = 'retained' AND retained_at IS NULL",
        ),
    ),
    Migration(
        "0008_one_claim_per_project",
        (
            # A project is held by one resource at most: two resources taking over the same
            # project (spec.projectId) at once cannot both pin their claims to it.
            "CREATE UNIQUE INDEX IF NOT EXISTS tenantdb_tenant_claim_neon_project_id_unique "
            "ON tenantdb_tenant_claim (neon_project_id) WHERE neon_project_id IS NOT NULL",
        ),
    ),
    Migration(
        "0009_decision_log",
        (
            # The operator's money and ownership decisions, for an auditor a month later: who or
            # what decided, why, and the figures (see tenantdb.store.decisions). Kept for
            # TENANTDB_DECISION_LOG_RETENTION_DAYS, pruned by the operator.
            """
            CREATE TABLE IF NOT EXISTS tenantdb_decision_log (
                id text PRIMARY KEY,
                decided_at timestamp NOT NULL DEFAULT now(),
                scope text NOT NULL,
                tenant_id text NOT NULL,
                action text NOT NULL,
                decided_by text NOT NULL,
                reason text NOT NULL,
                resource text,
                project_id text,
                spend_cents bigint,
                limit_cents bigint,
                details jsonb NOT NULL DEFAULT '{}'
            )
            """,
            # tenantdb describe: one tenant's latest decisions.
            "CREATE INDEX IF NOT EXISTS tenantdb_decision_log_tenant_idx "
            "ON tenantdb_decision_log (scope, tenant_id, decided_at DESC)",
            # The retention's prune: the oldest first.
            "CREATE INDEX IF NOT EXISTS tenantdb_decision_log_decided_at_idx "
            "ON tenantdb_decision_log (decided_at)",
        ),
    ),
    Migration(
        "0010_tenant_organization",
        (
            # Which Neon organisation (NeonOrganization name) each database resource was placed
            # in: written once, before its project is created, and never changed (see
            # tenantdb.store.organizations); counted per organisation for its room left.
            """
            CREATE TABLE IF NOT EXISTS tenantdb_tenant_organization (
                holder_uid text PRIMARY KEY,
                kind text NOT NULL,
                holder_namespace text NOT NULL,
                holder_name text NOT NULL,
                organization text NOT NULL,
                placed_at timestamp NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX IF NOT EXISTS tenantdb_tenant_organization_organization_idx "
            "ON tenantdb_tenant_organization (organization)",
        ),
    ),
)

# Sim's two env var tables, for a metadata DB without Sim (TENANTDB_STANDALONE_ENV_TABLES=true).
STANDALONE_ENV_TABLES: Final = Migration(
    "0003_sim_environment_tables_if_absent",
    (
        """
        CREATE TABLE IF NOT EXISTS environment (
            id text PRIMARY KEY,
            user_id text NOT NULL,
            variables json NOT NULL,
            updated_at timestamp NOT NULL DEFAULT now(),
            CONSTRAINT environment_user_id_unique UNIQUE (user_id)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS workspace_environment (
            id text PRIMARY KEY,
            workspace_id text NOT NULL,
            variables json NOT NULL DEFAULT '{}',
            created_at timestamp NOT NULL DEFAULT now(),
            updated_at timestamp NOT NULL DEFAULT now(),
            CONSTRAINT workspace_environment_workspace_unique UNIQUE (workspace_id)
        )
        """,
    ),
)

_SIM_ENV_TABLES: Final = ("environment", "workspace_environment")


async def apply_migrations(conn: Connection, *, standalone_env_tables: bool = False) -> list[str]:
    """Apply the migrations ``conn``'s database lacks, in order; return the names applied.

    ``conn`` must be in autocommit mode (the store's connections are): this opens the one
    transaction everything runs in.
    """
    async with conn.transaction():
        # A replica stuck behind a migration that hangs (say, waiting on a lock held on one of
        # Sim's tables) gives up and retries later rather than holding a connection forever.
        await conn.execute("SET LOCAL lock_timeout = '60s'")
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        # Read after the lock is held: in READ COMMITTED each statement sees what the replica
        # that held the lock before us committed.
        await conn.execute(_BOOKKEEPING)
        cursor = await conn.execute("SELECT name FROM tenantdb_schema_migrations")
        done = {row[0] for row in await cursor.fetchall()}
        applied: list[str] = []
        wanted = (*MIGRATIONS, STANDALONE_ENV_TABLES) if standalone_env_tables else MIGRATIONS
        for migration in wanted:
            if migration.name in done:
                continue
            for statement in migration.statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO tenantdb_schema_migrations (name) VALUES (%s)", (migration.name,))
            applied.append(migration.name)
    for name in applied:
        logger.info("applied metadata DB migration %s", name)
    return applied


async def check_env_tables(conn: Connection) -> None:
    """Raise ``StoreSchemaError`` unless Sim's env var tables exist (Sim's or the standalone ones)."""
    cursor = await conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(quote_ident(name)) IS NULL",
        (list(_SIM_ENV_TABLES),),
    )
    missing = [row[0] for row in await cursor.fetchall()]
    if missing:
        raise StoreSchemaError(
            f"the metadata DB has no {' and no '.join(missing)} table: point "
            "TENANTDB_METADATA_DATABASE_URL at Sim Studio's database after Sim's own migrations "
            "have run, or, for a metadata DB without Sim, set TENANTDB_STANDALONE_ENV_TABLES=true "
            "to have the operator create them"
        )

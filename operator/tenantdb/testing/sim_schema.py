"""A Sim-Studio-shaped schema of our own, for tests and the demo.

Written from the facts in ``shared/reference/sim-studio.md`` and Sim's ``packages/db/schema.ts``
(commit 0b232eb8, tag v0.8.9, August 2026), not copied from Sim's migrations: the columns, keys,
foreign keys, unique and check constraints of the Sim tables
the operator reads (``user``, ``workspace``, ``permissions``, ``subscription``,
``organization``, ``member``) or writes (``environment``, ``workspace_environment``,
``credential``, ``credential_member``). Columns the operator never touches are left out, except
where they are ``NOT NULL`` without a default (an insert "as Sim does" must fill them).

``SimRows`` inserts and changes rows the way Sim's code does (a registration, a new workspace, an
archive, a plan change, a personal save that replaces the whole object, a workspace merge under
Sim's advisory lock), so tests and the demo drive the operator exactly as Sim would; and the rows
a platform that provisioned in the app (the seed's in-app hooks) has before it switches to the
operator: a ``user_global_database`` / ``workspace_database`` row per tenant, the platform's
project or the user's own database (``ownership_type``). Those two tables are the operator's
own (its migrations create them): migrate first.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

import psycopg
from psycopg.types.json import Json

__all__ = ["SIM_SCHEMA", "SimRows", "create_sim_schema"]

SIM_SCHEMA: Final = """
CREATE TYPE permission_type AS ENUM ('admin', 'write', 'read');
CREATE TYPE credential_type AS ENUM ('oauth', 'env_workspace', 'env_personal');
CREATE TYPE credential_member_role AS ENUM ('admin', 'member');
CREATE TYPE credential_member_status AS ENUM ('active', 'pending', 'revoked');

CREATE TABLE "user" (
    id text PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    email_verified boolean NOT NULL DEFAULT false,
    created_at timestamp NOT NULL,
    updated_at timestamp NOT NULL,
    stripe_customer_id text,
    role text,
    banned boolean,
    CONSTRAINT user_email_unique UNIQUE (email)
);

CREATE TABLE organization (
    id text PRIMARY KEY,
    name text NOT NULL,
    slug text NOT NULL,
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now()
);

CREATE TABLE member (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
    organization_id text NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    role text NOT NULL,
    created_at timestamp NOT NULL DEFAULT now()
);
-- A user belongs to one organisation at most.
CREATE UNIQUE INDEX member_user_id_unique ON member (user_id);
CREATE INDEX member_organization_id_idx ON member (organization_id);

CREATE TABLE workspace (
    id text PRIMARY KEY,
    name text NOT NULL,
    owner_id text NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
    organization_id text REFERENCES organization(id) ON DELETE SET NULL,
    -- Whom Sim bills for the workspace. NO ACTION: Sim hands it to another user before it
    -- deletes an account (reassignBilledAccountForUser).
    billed_account_user_id text NOT NULL REFERENCES "user"(id) ON DELETE NO ACTION,
    archived_at timestamp,
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now()
);

CREATE TABLE permissions (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
    entity_type text NOT NULL,
    entity_id text NOT NULL,
    permission_type permission_type NOT NULL,
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    CONSTRAINT permissions_unique_constraint UNIQUE (user_id, entity_type, entity_id)
);

CREATE TABLE subscription (
    id text PRIMARY KEY,
    plan text NOT NULL,
    reference_id text NOT NULL,
    stripe_customer_id text,
    stripe_subscription_id text,
    status text,
    period_start timestamp,
    period_end timestamp,
    cancel_at_period_end boolean,
    cancel_at timestamp,
    canceled_at timestamp,
    ended_at timestamp,
    seats integer,
    trial_start timestamp,
    trial_end timestamp,
    billing_interval text,
    metadata json,
    CONSTRAINT check_enterprise_metadata CHECK (plan != 'enterprise' OR metadata IS NOT NULL)
);
CREATE INDEX subscription_reference_status_idx ON subscription (reference_id, status);

CREATE TABLE environment (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
    variables json NOT NULL,
    updated_at timestamp NOT NULL DEFAULT now(),
    CONSTRAINT environment_user_id_unique UNIQUE (user_id)
);

CREATE TABLE workspace_environment (
    id text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspace(id) ON DELETE CASCADE,
    variables json NOT NULL DEFAULT '{}',
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX workspace_environment_workspace_unique ON workspace_environment (workspace_id);

CREATE TABLE credential (
    id text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspace(id) ON DELETE CASCADE,
    type credential_type NOT NULL,
    display_name text NOT NULL,
    description text,
    provider_id text,
    account_id text,
    env_key text,
    env_owner_user_id text REFERENCES "user"(id) ON DELETE CASCADE,
    created_by text NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    CONSTRAINT credential_workspace_env_source_check
        CHECK ((type <> 'env_workspace') OR (env_key IS NOT NULL AND env_owner_user_id IS NULL))
);
CREATE UNIQUE INDEX credential_workspace_env_unique
    ON credential (workspace_id, type, env_key) WHERE type = 'env_workspace';

CREATE TABLE credential_member (
    id text PRIMARY KEY,
    credential_id text NOT NULL REFERENCES credential(id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
    role credential_member_role NOT NULL DEFAULT 'member',
    status credential_member_status NOT NULL DEFAULT 'active',
    joined_at timestamp,
    invited_by text REFERENCES "user"(id) ON DELETE SET NULL,
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX credential_member_unique ON credential_member (credential_id, user_id);
"""

# Sim's account deletion hands each workspace over to another user (lib/workspaces/utils.ts).
_BILL_TO_ANOTHER: Final = """
UPDATE workspace SET updated_at = now(), billed_account_user_id = coalesce(
    CASE WHEN owner_id <> %(user)s THEN owner_id END,
    (SELECT p.user_id FROM permissions p WHERE p.entity_type = 'workspace' AND p.entity_id = workspace.id
        AND p.permission_type = 'admin' AND p.user_id <> %(user)s ORDER BY p.created_at, p.id LIMIT 1),
    billed_account_user_id)
WHERE billed_account_user_id = %(user)s
"""
_HAND_TO_ANOTHER: Final = """
WITH handed AS (
    SELECT w.id, coalesce(
        CASE WHEN w.billed_account_user_id <> %(user)s THEN w.billed_account_user_id END,
        (SELECT p.user_id FROM permissions p WHERE p.entity_type = 'workspace' AND p.entity_id = w.id
            AND p.permission_type = 'admin' AND p.user_id <> %(user)s ORDER BY p.created_at, p.id LIMIT 1)
    ) AS new_owner
    FROM workspace w WHERE w.owner_id = %(user)s
)
UPDATE workspace SET owner_id = handed.new_owner, updated_at = now()
FROM handed WHERE workspace.id = handed.id AND handed.new_owner IS NOT NULL
RETURNING workspace.id, workspace.owner_id
"""


async def create_sim_schema(conn: psycopg.AsyncConnection[Any]) -> None:
    """Create the Sim-shaped tables in ``conn``'s database (its first ``search_path`` schema)."""
    await conn.execute(SIM_SCHEMA)


def new_id() -> str:
    """An id as Sim generates them: UUID v4 text."""
    return str(uuid.uuid4())


class SimRows:
    """Writes rows into a Sim-shaped database the way Sim's own code does. ``url``: libpq URI."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def _execute(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall() if cursor.description else []

    async def register_user(
        self, *, name: str = "Ada", email: str | None = None, user_id: str | None = None
    ) -> str:
        user_id = user_id or new_id()
        await self._execute(
            'INSERT INTO "user" (id, name, email, created_at, updated_at) VALUES (%s, %s, %s, now(), now())',
            user_id,
            name,
            email or f"{user_id}@example.com",
        )
        return user_id

    async def delete_user(self, user_id: str) -> None:
        """The user row alone (its own workspaces go with it, by cascade)."""
        await self._execute('DELETE FROM "user" WHERE id = %s', user_id)

    async def delete_account(self, user_id: str) -> None:
        """Sim's account deletion (``lib/workspaces/utils.ts``), in one transaction: each
        workspace billed to the user is billed to its owner, else to another admin
        (``reassignBilledAccountForUser``); each workspace the user owns goes to its billed
        account, else to another admin, who is made admin (``reassignOwnedWorkspacesForUser``);
        then the user row. Sim refuses the deletion when a workspace has nobody to take it:
        so does this (the foreign key on ``billed_account_user_id``)."""
        async with (
            await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn,
            conn.transaction(),
        ):
            # reassignBilledAccountForUser: the owner, else another admin.
            await conn.execute(_BILL_TO_ANOTHER, {"user": user_id})
            # reassignOwnedWorkspacesForUser: the billed account (just rewritten), else another admin.
            cursor = await conn.execute(_HAND_TO_ANOTHER, {"user": user_id})
            for workspace_id, new_owner in await cursor.fetchall():
                await conn.execute(
                    "INSERT INTO permissions (id, user_id, entity_type, entity_id, permission_type) "
                    "VALUES (%s, %s, 'workspace', %s, 'admin') ON CONFLICT (user_id, entity_type, entity_id) "
                    "DO UPDATE SET permission_type = 'admin', updated_at = now()",
                    (new_id(), new_owner, workspace_id),
                )
            await conn.execute('DELETE FROM "user" WHERE id = %s', (user_id,))

    async def transfer_workspace(
        self, workspace_id: str, new_owner_id: str, *, billing_too: bool = True
    ) -> None:
        """A workspace handed to another user: owner and (as Sim's transfer does when the payer
        leaves with it) billed account; the new owner made admin."""
        async with (
            await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn,
            conn.transaction(),
        ):
            await conn.execute(
                "UPDATE workspace SET owner_id = %(owner)s, updated_at = now(), billed_account_user_id = "
                "CASE WHEN %(billing)s THEN %(owner)s ELSE billed_account_user_id END WHERE id = %(id)s",
                {"owner": new_owner_id, "billing": billing_too, "id": workspace_id},
            )
            await conn.execute(
                "INSERT INTO permissions (id, user_id, entity_type, entity_id, permission_type) "
                "VALUES (%s, %s, 'workspace', %s, 'admin') ON CONFLICT (user_id, entity_type, entity_id) "
                "DO UPDATE SET permission_type = 'admin', updated_at = now()",
                (new_id(), new_owner_id, workspace_id),
            )

    async def set_billed_account(self, workspace_id: str, user_id: str) -> None:
        """Sim's workspace billing settings: another user pays for the workspace."""
        await self._execute(
            "UPDATE workspace SET billed_account_user_id = %s, updated_at = now() WHERE id = %s",
            user_id,
            workspace_id,
        )

    async def workspace_payer(self, workspace_id: str) -> tuple[str, str]:
        """(owner_id, billed_account_user_id) of a workspace."""
        rows = await self._execute(
            "SELECT owner_id, billed_account_user_id FROM workspace WHERE id = %s", workspace_id
        )
        return rows[0][0], rows[0][1]

    async def create_workspace(
        self, owner_id: str, *, name: str = "My workspace", workspace_id: str | None = None
    ) -> str:
        workspace_id = workspace_id or new_id()
        async with (
            await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn,
            conn.transaction(),
        ):
            await conn.execute(
                "INSERT INTO workspace (id, name, owner_id, billed_account_user_id) VALUES (%s, %s, %s, %s)",
                (workspace_id, name, owner_id, owner_id),
            )
            await conn.execute(
                "INSERT INTO permissions (id, user_id, entity_type, entity_id, permission_type) "
                "VALUES (%s, %s, 'workspace', %s, 'admin')",
                (new_id(), owner_id, workspace_id),
            )
        return workspace_id

    async def add_member(self, workspace_id: str, user_id: str, *, permission: str = "write") -> None:
        await self._execute(
            "INSERT INTO permissions (id, user_id, entity_type, entity_id, permission_type) "
            "VALUES (%s, %s, 'workspace', %s, %s)",
            new_id(),
            user_id,
            workspace_id,
            permission,
        )

    async def archive_workspace(self, workspace_id: str) -> None:
        await self._execute(
            "UPDATE workspace SET archived_at = now(), updated_at = now() WHERE id = %s", workspace_id
        )

    async def delete_workspace(self, workspace_id: str) -> None:
        await self._execute("DELETE FROM workspace WHERE id = %s", workspace_id)

    async def subscribe(
        self, reference_id: str, plan: str, *, status: str = "active", seats: int | None = None
    ) -> str:
        """A subscription row as Stripe's webhook leaves it; an enterprise plan gets the metadata
        Sim requires of it (``check_enterprise_metadata``)."""
        subscription_id = new_id()
        metadata = None
        if plan == "enterprise":
            metadata = Json(
                {"plan": "enterprise", "referenceId": reference_id, "seats": seats or 10, "monthlyPrice": 200}
            )
        await self._execute(
            "INSERT INTO subscription (id, plan, reference_id, status, seats, metadata, period_start, "
            "period_end) VALUES (%s, %s, %s, %s, %s, %s, now(), now() + interval '30 days')",
            subscription_id,
            plan,
            reference_id,
            status,
            seats,
            metadata,
        )
        return subscription_id

    async def change_plan(self, subscription_id: str, plan: str) -> None:
        """Sim's ``syncSubscriptionPlan``: Stripe moved the subscription to another price."""
        await self._execute("UPDATE subscription SET plan = %s WHERE id = %s", plan, subscription_id)

    async def set_subscription_status(self, subscription_id: str, status: str) -> None:
        await self._execute("UPDATE subscription SET status = %s WHERE id = %s", status, subscription_id)

    async def create_organization(self, *, name: str = "Team") -> str:
        organization_id = new_id()
        await self._execute(
            "INSERT INTO organization (id, name, slug) VALUES (%s, %s, %s)",
            organization_id,
            name,
            organization_id,
        )
        return organization_id

    async def add_org_member(self, organization_id: str, user_id: str, *, role: str = "member") -> None:
        await self._execute(
            "INSERT INTO member (id, user_id, organization_id, role) VALUES (%s, %s, %s, %s)",
            new_id(),
            user_id,
            organization_id,
            role,
        )

    async def attach_workspace_to_organization(self, workspace_id: str, organization_id: str) -> None:
        await self._execute(
            "UPDATE workspace SET organization_id = %s, updated_at = now() WHERE id = %s",
            organization_id,
            workspace_id,
        )

    async def save_personal_env(self, user_id: str, variables: dict[str, str]) -> None:
        """Sim's ``POST /api/environment``: the whole object replaced with what the page sent."""
        await self._execute(
            "INSERT INTO environment (id, user_id, variables, updated_at) VALUES (%s, %s, %s, now()) "
            "ON CONFLICT (user_id) DO UPDATE SET variables = excluded.variables, updated_at = now()",
            new_id(),
            user_id,
            Json(variables),
        )

    async def personal_env(self, user_id: str) -> dict[str, str]:
        rows = await self._execute("SELECT variables FROM environment WHERE user_id = %s", user_id)
        return dict(rows[0][0]) if rows else {}

    async def workspace_env(self, workspace_id: str) -> dict[str, str]:
        rows = await self._execute(
            "SELECT variables FROM workspace_environment WHERE workspace_id = %s", workspace_id
        )
        return dict(rows[0][0]) if rows else {}

    async def workspace_env_credentials(self, workspace_id: str) -> dict[str, set[tuple[str, str]]]:
        """``{env_key: {(member user id, role), ...}}`` of the workspace's env_workspace credentials."""
        rows = await self._execute(
            "SELECT c.env_key, m.user_id, m.role::text FROM credential c "
            "LEFT JOIN credential_member m ON m.credential_id = c.id AND m.status = 'active' "
            "WHERE c.workspace_id = %s AND c.type = 'env_workspace'",
            workspace_id,
        )
        result: dict[str, set[tuple[str, str]]] = {}
        for env_key, user_id, role in rows:
            members = result.setdefault(env_key, set())
            if user_id is not None:
                members.add((user_id, role))
        return result

    async def merge_workspace_env(self, workspace_id: str, updates: dict[str, str]) -> None:
        """Sim's workspace env write: advisory lock, read, merge, write back (no row lock)."""
        async with (
            await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn,
            conn.transaction(),
        ):
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (workspace_id,))
            cursor = await conn.execute(
                "SELECT variables FROM workspace_environment WHERE workspace_id = %s", (workspace_id,)
            )
            row = await cursor.fetchone()
            merged = {**(json.loads(json.dumps(row[0])) if row else {}), **updates}
            await conn.execute(
                "INSERT INTO workspace_environment (id, workspace_id, variables) VALUES (%s, %s, %s) "
                "ON CONFLICT (workspace_id) DO UPDATE SET variables = excluded.variables, "
                "updated_at = now()",
                (new_id(), workspace_id, Json(merged)),
            )

    async def provisioned_in_app(
        self,
        tenant_id: str,
        *,
        workspace: bool = False,
        neon_project_id: str,
        ownership_type: str = "platform",
        database_name: str = "neondb",
        connection_uri: str = "",
    ) -> None:
        """The metadata row the in-app integration wrote for a user's global database (or, with
        ``workspace``, a workspace's agent database). ``connection_uri`` is stored as given (the
        app stored it encrypted)."""
        query = (
            "INSERT INTO workspace_database (id, workspace_id, ownership_type, neon_project_id, "
            "neon_branch_id, neon_connection_uri, database_name) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            if workspace
            else "INSERT INTO user_global_database (id, user_id, ownership_type, neon_project_id, "
            "neon_branch_id, neon_connection_uri, database_name) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        )
        await self._execute(
            query,
            new_id(),
            tenant_id,
            ownership_type,
            neon_project_id,
            f"br-{neon_project_id}",
            connection_uri,
            database_name,
        )

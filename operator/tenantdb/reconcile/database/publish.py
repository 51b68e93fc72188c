"""Publish: the connection string in the Secret, the tenant's metadata row and the env var Sim
Studio reads; and the fleet's cheap check that they still say it (``check_published``).

Each is written only when missing or different (or sealed with a previous encryption key:
written again with the current one); the row and env var only while they are ours (else a
conflict, left as they are). After a password rotation (``Rotated``) the new connection string
wins over every cached one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantdb.api import Phase, Tenant
from tenantdb.reconcile.connection import secret_data
from tenantdb.reconcile.database.claim import claim_tenant
from tenantdb.reconcile.database.credentials import rotation_pending
from tenantdb.reconcile.database.errors import CONFLICT_RETRY_SECONDS, outside_errors
from tenantdb.reconcile.database.model import Claimed, DatabaseDeps, DatabaseObject, Plan, Rotated, decrypted
from tenantdb.reconcile.database.rows import read_sealed_env_var
from tenantdb.reconcile.database.uri import connection_uri
from tenantdb.reconcile.errors import RetryLater
from tenantdb.reconcile.ownership import env_var_is_ours, row_is_ours
from tenantdb.reconcile.ports import Events
from tenantdb.reconcile.reasons import Reason

__all__ = ["check_published", "publish"]

_LABEL_MANAGED = {"app.kubernetes.io/managed-by": "tenantdb"}


async def publish(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    *,
    project_id: str,
    branch_id: str,
    claimed: Claimed,
    plan: Plan,
    created: Any,
    host: str | None,
    rotated: Rotated | None = None,
) -> None:
    """Secret, metadata row and env var, each written only when missing or different; the
    row and env var only while they are ours (else a conflict, left as they are). The row is
    the one the claim read (``claimed.row``). ``rotated``: the password was just reset, and
    its connection string replaces every cached one."""
    tenant, secret, row = obj.identity.tenant, claimed.secret, claimed.row
    async with outside_errors("publishing the connection string"):
        _check_row(tenant, row, {project_id, obj.status.project_id or project_id})
        row_uri = decrypted(deps.cipher, row.encrypted_uri) if row is not None else None
        uri, pooled_uri = await connection_uri(
            obj,
            deps,
            project_id,
            plan,
            events,
            branch_id=branch_id,
            secret=secret,
            created=created,
            host=host,
            row_uri=row_uri,
            rotated=rotated,
        )
        await _write_secret(
            obj,
            deps,
            events,
            project_id,
            plan,
            existing=secret.data if secret is not None else None,
            uri=uri,
            pooled_uri=pooled_uri,
        )
        # Metadata rows and the env var Sim Studio reads.
        if not _row_matches(row, deps, project_id, uri):
            await deps.metadata.upsert_database(
                tenant,
                project_id=project_id,
                branch_id=branch_id,
                encrypted_uri=deps.cipher.encrypt(uri),
                database_name=plan.database_name,
            )
        await _write_env_var(deps, events, tenant, uri, row_uri)


async def check_published(obj: DatabaseObject, deps: DatabaseDeps, events: Events) -> bool:
    """The fleet's cheap check of a settled resource: its Secret, row and env var put back
    when missing or changed, without a Neon call (unless one of them must be rewritten and
    its URI is nowhere else to be had).

    Only for a resource Ready (or Suspended) at its current generation whose project this
    process has proven to be its own (by name: the fleet's project list or a reconcile):
    status alone is a hint anyone with status rights can write. Returns False when that is
    not so; the caller then reconciles in full.
    """
    status, identity = obj.status, obj.identity
    settled = (
        status.phase in (Phase.READY, Phase.SUSPENDED)
        and status.observed_generation == obj.generation
        and bool(status.project_id and status.endpoint_id and status.host)
    )
    if not settled or deps.known_projects.get(identity.uid) != status.project_id:
        return False
    if rotation_pending(obj, deps.rotations):
        return False  # a rotation asked for or under way: the caches may hold a dead password
    assert status.project_id is not None
    assert status.host is not None
    plan = Plan.of(obj, deps.settings)
    if status.secret_name != plan.secret_name:
        return False  # the Secret's name changed without a spec generation? reconcile in full
    claimed = await claim_tenant(obj, deps, plan.secret_name)
    if claimed.claim.project_id != status.project_id:
        return False
    deps.pinned_claims[identity.uid] = status.project_id
    await publish(
        obj,
        deps,
        events,
        project_id=status.project_id,
        branch_id=status.branch_id or "",
        claimed=claimed,
        plan=plan,
        created=None,
        host=None,  # status.host is a hint: a cached URI must match our own row instead
    )
    return True


def _check_row(tenant: Tenant, row: Any, projects: set[str]) -> None:
    if not row_is_ours(row, projects):
        raise RetryLater(
            Reason.CONFLICT,
            f"the metadata row of {tenant.label} holds Neon project {row.project_id}, "
            "not this resource's: left as it is",
            delay=CONFLICT_RETRY_SECONDS,
        )


async def _write_secret(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    project_id: str,
    plan: Plan,
    *,
    existing: Mapping[str, str] | None,
    uri: str,
    pooled_uri: str | None,
) -> None:
    """The Secret (read, and checked to be ours, at the start): rewritten only when it is
    missing or says something else (fresh IVs would otherwise make every resync a write)."""
    identity, spec, secret_name = obj.identity, obj.spec, plan.secret_name
    include_plaintext = spec.connection_secret.include_plaintext
    # A pooled URI comes from the create answer or a checked Secret (``connection_uri``), else Neon.
    if include_plaintext and pooled_uri is None:
        pooled_uri = await deps.neon.get_connection_uri(
            project_id, database_name=plan.database_name, role_name=plan.role_name, pooled=True
        )
    if _secret_matches(existing, deps, uri, include_plaintext):
        return
    desired = secret_data(
        encrypted_uri=deps.cipher.encrypt(uri),
        uri=uri,
        pooled_uri=pooled_uri,
        include_plaintext=include_plaintext,
    )
    labels = {**_LABEL_MANAGED, "tenantdb.io/kind": identity.kind.lower(), "tenantdb.io/name": identity.name}
    await deps.secrets.write_secret(
        namespace=identity.namespace, name=secret_name, data=desired, labels=labels, owner=obj.owner
    )
    if existing is not None:
        reason = Reason.SECRET_UPDATED
    elif obj.status.secret_name == secret_name:
        reason = Reason.SECRET_RESTORED
    else:
        reason = Reason.SECRET_WRITTEN
    events.normal(reason, f"Connection string written to Secret {secret_name}")


async def _write_env_var(
    deps: DatabaseDeps, events: Events, tenant: Tenant, uri: str, row_uri: str | None
) -> None:
    """The env var, set to our URI unless it is another writer's.

    The row was checked to be ours (or absent). The env var is ours when it reaches our
    database, now or as our row recorded it; anything else is another writer's: left alone,
    and said."""
    sealed = await read_sealed_env_var(deps.metadata, tenant)
    current = decrypted(deps.cipher, sealed)
    if current == uri and sealed is not None and deps.cipher.is_current(sealed):
        return
    if not env_var_is_ours(current, (uri, row_uri)):
        raise RetryLater(
            Reason.CONFLICT,
            f"{tenant.env_var} of {tenant.label} points at another database than this "
            "resource's: left as it is",
            delay=CONFLICT_RETRY_SECONDS,
        )
    await deps.metadata.set_env_var(tenant, key=tenant.env_var, value=uri)
    events.normal(Reason.ENV_VAR_WRITTEN, f"{tenant.env_var} set for {tenant.label}")


def _secret_matches(
    existing: Mapping[str, str] | None, deps: DatabaseDeps, uri: str, include_plaintext: bool
) -> bool:
    if not existing:
        return False
    sealed = existing.get("DATABASE_URL_ENCRYPTED")
    if not sealed or decrypted(deps.cipher, sealed) != uri or not deps.cipher.is_current(sealed):
        return False
    has_plaintext = "DATABASE_URL" in existing
    return has_plaintext == include_plaintext and (not include_plaintext or existing["DATABASE_URL"] == uri)


def _row_matches(row: Any, deps: DatabaseDeps, project_id: str, uri: str) -> bool:
    return (
        row is not None
        and row.project_id == project_id
        and decrypted(deps.cipher, row.encrypted_uri) == uri
        and deps.cipher.is_current(row.encrypted_uri)
    )

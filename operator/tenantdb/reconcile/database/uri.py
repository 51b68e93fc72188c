"""Where the connection URI comes from: a rotation's new password, else the create's answer,
else our own Secret or row (caches, used only when they are this project's), else one Neon call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tenantdb.reconcile.database.model import DatabaseDeps, DatabaseObject, Plan, Rotated, decrypted
from tenantdb.reconcile.database.password import revealable_password
from tenantdb.reconcile.ownership import same_database, uri_is_for
from tenantdb.reconcile.ports import Events

__all__ = ["connection_uri"]


async def connection_uri(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    project_id: str,
    plan: Plan,
    events: Events,
    *,
    branch_id: str,
    secret: Any,
    created: Any,
    host: str | None,
    row_uri: str | None,
    rotated: Rotated | None = None,
) -> tuple[str, str | None]:
    """The URI and, when known without asking, the pooled one: from a rotation (its password
    is the only one that works once Neon's operations finished: every cache holds the old
    one), else the create answer, else our own Secret, else our own row, else one Neon call."""
    if rotated is not None:
        return rotated.uri, rotated.pooled_uri
    if created is not None:
        connection = created.connection
        return connection.uri.get_secret_value(), connection.pooled_uri.get_secret_value()
    cached = _from_secret(obj, deps, plan, secret, host, row_uri)
    if cached is not None:
        return cached
    # Our own row (checked by the caller to hold this project) is the other cache: a deleted
    # Secret is put back from it without asking Neon. Its host is checked when Neon just told
    # it (``host``); the fleet's check (``host=None``: status.host is anyone's to write) takes
    # the row as it is, since only the operator writes a row holding a project proven its own.
    if row_uri and (
        host is None
        or uri_is_for(row_uri, host=host, database_name=plan.database_name, role_name=plan.role_name)
    ):
        return row_uri, None
    if obj.spec.project_id is not None and branch_id:
        await revealable_password(obj, deps, events, project_id, branch_id, plan)
    uri = await deps.neon.get_connection_uri(
        project_id, database_name=plan.database_name, role_name=plan.role_name
    )
    return uri, None


def _from_secret(
    obj: DatabaseObject, deps: DatabaseDeps, plan: Plan, secret: Any, host: str | None, row_uri: str | None
) -> tuple[str, str | None] | None:
    """The URIs our own Secret holds, when they are this project's.

    The Secret is only a cache: its URI is used when it is this project's (its host is the
    project's endpoint, its database and role are ours), or when it reaches the database our own
    row records. Anything else in it (a URI copied from another tenant's Secret) is ignored and
    the URI fetched from Neon again.
    """
    existing: Mapping[str, str] = secret.data if secret is not None and secret.owned else {}
    if "DATABASE_URL_ENCRYPTED" not in existing:
        return None
    # Written with another key or tampered with (None): fetch it again from Neon.
    cached = decrypted(deps.cipher, existing["DATABASE_URL_ENCRYPTED"])
    if not cached or not (
        (
            host is not None
            and uri_is_for(cached, host=host, database_name=plan.database_name, role_name=plan.role_name)
        )
        or same_database(cached, row_uri)
    ):
        return None
    # The pooled URI is taken only from a Secret whose direct URI is ours, and only
    # when it names the same database and role.
    pooled = existing.get("DATABASE_URL_POOLED")
    return cached, pooled if pooled and _same_target_but_host(pooled, cached) else None


def _same_target_but_host(pooled: str, direct: str) -> bool:
    """A pooled URI names the direct one's database and role (its host is the pooler's)."""
    try:
        a, b = urlsplit(pooled), urlsplit(direct)
    except ValueError:
        return False
    return (a.path, a.username) == (b.path, b.username)

"""Who a request comes from: which key, the organisations it reaches, and their limits.

An organisation key (the default key and each ``OrganizationOptions.api_key``) reaches its
own organisation only; the optional account key (a personal key of a member of all of
them) reaches every organisation and defaults to the default one. Rate limits are per key,
project limits per organisation, as Neon counts them.
"""

from __future__ import annotations

import dataclasses
import hmac

from aiohttp import web

from tenantdb.testing.neon.errors import ApiError
from tenantdb.testing.neon.options import EmulatorOptions
from tenantdb.testing.neon.registry import Registry

__all__ = ["CALLER", "Caller", "check_org", "identify", "project_limit", "projects_held"]


@dataclasses.dataclass(frozen=True)
class Caller:
    key_id: str
    """Names the key's rate-limit windows (never the key itself)."""
    default_org: str
    """The organisation a request that names none acts in."""
    orgs: tuple[str, ...]
    """Every organisation the key reaches."""
    rate_limit_per_minute: int | None
    auth_method: str


CALLER = web.RequestKey("neon_emulator_caller", Caller)
"""Set by the ``authenticate`` middleware on every request it lets through."""


def _same(token: str, key: str) -> bool:
    return hmac.compare_digest(token.encode(), key.encode())


def identify(options: EmulatorOptions, token: str) -> Caller | None:
    """The caller a bearer token stands for, or None (unknown or revoked: 401)."""
    if _same(token, options.api_key):
        return Caller(
            key_id=f"org:{options.org_id}",
            default_org=options.org_id,
            orgs=(options.org_id,),
            rate_limit_per_minute=options.rate_limit_per_minute,
            auth_method="api_key_org",
        )
    for org in options.organizations:
        if _same(token, org.api_key):
            if org.revoked:
                return None
            return Caller(
                key_id=f"org:{org.org_id}",
                default_org=org.org_id,
                orgs=(org.org_id,),
                rate_limit_per_minute=org.rate_limit_per_minute,
                auth_method="api_key_org",
            )
    if options.account_key is not None and _same(token, options.account_key):
        return Caller(
            key_id="account",
            default_org=options.org_id,
            orgs=(options.org_id, *(org.org_id for org in options.organizations)),
            rate_limit_per_minute=options.rate_limit_per_minute,
            auth_method="api_key_user",
        )
    return None


def check_org(org_id: str | None, caller: Caller) -> str:
    """The organisation asked for: the caller's default, or 404 for one it does not reach."""
    if org_id is None:
        return caller.default_org
    if org_id not in caller.orgs:
        raise ApiError(404, f"organization {org_id!r} not found or not accessible with this API key")
    return org_id


def project_limit(options: EmulatorOptions, org_id: str) -> int | None:
    """The live projects ``org_id`` may hold (None: no limit)."""
    if org_id == options.org_id:
        return options.max_projects
    for org in options.organizations:
        if org.org_id == org_id:
            return org.max_projects
    return None


def projects_held(registry: Registry, org_id: str) -> int:
    """Live projects of ``org_id`` plus its creates in flight (they count against its limit)."""
    return sum(1 for project in registry.live() if project.org_id == org_id) + sum(
        1 for org in registry.pending_orgs.values() if org == org_id
    )

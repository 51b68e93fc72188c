"""Names derived from a resource's identity: the Neon project, the Secret.

The Neon project name is deterministic so that an operator which crashed between "Neon
created the project" and "we recorded its id" finds the project again by name
(``GET /projects?search=``) and adopts it instead of creating a second one.
"""

from __future__ import annotations

import dataclasses
import re

from tenantdb.api import Tenant

__all__ = ["DatabaseIdentity", "project_name", "tenant_project_prefix"]

_UNSAFE = re.compile(r"[^a-z0-9-]+")


@dataclasses.dataclass(frozen=True)
class DatabaseIdentity:
    """Who a database resource is: kind, namespace, name, uid, the user whose budget it counts
    against (its owner, or for a workspace's the user billed for it: ``spec.billedUserId``) and
    the tenant it serves (a user, or a workspace)."""

    kind: str
    namespace: str
    name: str
    uid: str
    user_id: str
    tenant: Tenant

    def default_secret_name(self) -> str:
        return f"{self.name}-connection"[:253]


def project_name(prefix: str, identity: DatabaseIdentity) -> str:
    """``<prefix>-<g|w>-<tenant id>-<uid>``: readable, unique, and searchable by uid."""
    return f"{tenant_project_prefix(prefix, identity.tenant)}{identity.uid}"[:256]


def tenant_project_prefix(prefix: str, tenant: Tenant) -> str:
    """``<prefix>-<g|w>-<tenant id>-``: how every project name of the tenant's resources begins."""
    tenant_part = _UNSAFE.sub("-", tenant.id.lower()).strip("-")[:64]
    return f"{prefix}-{tenant.scope.letter}-{tenant_part}-"

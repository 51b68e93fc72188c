"""Names derived from a resource's identity: the Neon project, the Secret, the env var.

The Neon project name is deterministic so that an operator which crashed between "Neon
created the project" and "we recorded its id" finds the project again by name
(``GET /projects?search=``) and adopts it instead of creating a second one.
"""

from __future__ import annotations

import dataclasses
import re

__all__ = ["DatabaseIdentity", "project_name"]

_UNSAFE = re.compile(r"[^a-z0-9-]+")
GLOBAL_KIND = "GlobalDatabase"
WORKSPACE_KIND = "WorkspaceDatabase"


@dataclasses.dataclass(frozen=True)
class DatabaseIdentity:
    """Who a database resource is: kind, namespace, name, uid and the tenant it serves."""

    kind: str
    namespace: str
    name: str
    uid: str
    user_id: str
    workspace_id: str | None = None

    @property
    def is_workspace(self) -> bool:
        return self.kind == WORKSPACE_KIND

    @property
    def env_var(self) -> str:
        return "AGENT_DB_URL" if self.is_workspace else "GLOBAL_DB_URL"

    @property
    def tenant_label(self) -> str:
        return f"workspace {self.workspace_id}" if self.is_workspace else f"user {self.user_id}"

    def default_secret_name(self) -> str:
        return f"{self.name}-connection"[:253]


def project_name(prefix: str, identity: DatabaseIdentity) -> str:
    """``<prefix>-<g|w>-<tenant id>-<uid>``: readable, unique, and searchable by uid."""
    tenant = identity.workspace_id if identity.is_workspace else identity.user_id
    short = "w" if identity.is_workspace else "g"
    tenant_part = _UNSAFE.sub("-", (tenant or "").lower()).strip("-")[:64]
    return f"{prefix}-{short}-{tenant_part}-{identity.uid}"[:256]

"""Whose database a resource is: a user's or a workspace's, as one small value.

A GlobalDatabase serves a user, a WorkspaceDatabase a workspace. The handlers decide which
once, when they decode the resource, and hand everything downstream a ``Tenant``; the store,
the reconcilers and the names they derive read its ``scope`` instead of asking the kind again.
What a scope means outside the metadata DB's tables (which are the store's business) is the
table at the end of this module, and nowhere else.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Final

__all__ = ["Scope", "Tenant"]


class Scope(enum.Enum):
    """A user's database (``GLOBAL``, keyed by user id) or a workspace's (keyed by workspace id)."""

    GLOBAL = "global"
    WORKSPACE = "workspace"

    @property
    def owner(self) -> str:
        """What the tenant id names, for messages: ``user`` or ``workspace``."""
        return _FACTS[self].owner

    @property
    def env_var(self) -> str:
        """The env var Sim Studio reads the database's connection string from."""
        return _FACTS[self].env_var

    @property
    def letter(self) -> str:
        """The scope's letter in the Neon project names of its databases."""
        return _FACTS[self].letter


@dataclasses.dataclass(frozen=True, slots=True)
class Tenant:
    """Whose a database is: the scope and the Sim id of its user or workspace."""

    scope: Scope
    id: str

    @property
    def env_var(self) -> str:
        return self.scope.env_var

    @property
    def label(self) -> str:
        """``user <id>`` or ``workspace <id>``, as messages and Events name the tenant."""
        return f"{self.scope.owner} {self.id}"


@dataclasses.dataclass(frozen=True, slots=True)
class _ScopeFacts:
    owner: str
    env_var: str
    letter: str


# Both scopes side by side, so that they can be compared at a glance.
_FACTS: Final[Mapping[Scope, _ScopeFacts]] = {
    Scope.GLOBAL: _ScopeFacts(owner="user", env_var="GLOBAL_DB_URL", letter="g"),
    Scope.WORKSPACE: _ScopeFacts(owner="workspace", env_var="AGENT_DB_URL", letter="w"),
}

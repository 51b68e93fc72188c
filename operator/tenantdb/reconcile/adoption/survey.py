"""What switching the operator on would do to a platform that already has databases: pure.

Each user and each live workspace of Sim (the tenants the Sim sync makes a database for) gets
one action, decided from its row in ``user_global_database`` / ``workspace_database`` and
Neon's project list of the organisation:

- ``adopt``: a row of the platform's (``ownership_type`` ``platform``) naming a live project of
  the organisation: the sync sets ``spec.projectId`` and the operator takes the project over;
- ``create``: no row, or a platform row without a project: a new project is made;
- ``leave-alone``: a row whose ``ownership_type`` is anything else: the user's own database,
  never acted on, its row and env var never written;
- ``blocked``: a platform row naming a project that cannot be taken over (not in the
  organisation, or named by another row too): its resource would stay ``Ready=False`` until
  the row is put right.

Beside them, what is inconsistent (``Problem``), each said without a URI or a password:
connection strings are decrypted here, compared in memory, and dropped.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tenantdb.api import GLOBAL_DATABASE, WORKSPACE_DATABASE, Scope, Tenant
from tenantdb.reconcile.ownership import same_database
from tenantdb.reconcile.sim_sync.names import resource_name, valid_tenant_id
from tenantdb.reconcile.sweep import owner_uid
from tenantdb.store import AdoptionInventory, Cipher, RecordedDatabase

__all__ = ["PLATFORM", "Action", "Inconsistency", "Problem", "Survey", "TenantPlan", "survey"]

PLATFORM = "platform"  # the ownership_type of the databases the platform made (and we take over)


class Action(enum.StrEnum):
    ADOPT = "adopt"
    CREATE = "create"
    LEAVE_ALONE = "leave-alone"
    BLOCKED = "blocked"


class Problem(enum.StrEnum):
    PROJECT_NOT_FOUND = "project-not-found"  # a platform row names a project the organisation lacks
    PROJECT_SHARED = "project-shared"  # two platform rows name one project
    PROJECT_WITHOUT_ROW = "project-without-row"  # a project named as ours that no row names
    ROW_WITHOUT_TENANT = "row-without-tenant"  # a platform row of a user or workspace Sim no longer has
    URI_UNREADABLE = "uri-unreadable"  # a row's connection string cannot be decrypted
    ENV_VAR_DIFFERS = "env-var-differs"  # GLOBAL_DB_URL / AGENT_DB_URL is not the row's URI
    ENV_VAR_WITHOUT_ROW = "env-var-without-row"  # the env var holds a URL, yet no row records one
    ENV_VAR_UNREADABLE = "env-var-unreadable"  # not a JSON object, not a string, or not decryptable


@dataclasses.dataclass(frozen=True)
class TenantPlan:
    """What switching on does for one user or workspace."""

    tenant: Tenant
    user_id: str
    action: Action
    kind: str
    namespace: str
    name: str  # the resource the Sim sync makes for it
    project_id: str | None
    project_name: str | None
    ownership_type: str | None  # None: no row
    why: str


@dataclasses.dataclass(frozen=True)
class Inconsistency:
    problem: Problem
    tenant: Tenant | None
    project_id: str | None
    project_name: str | None
    detail: str


@dataclasses.dataclass
class Survey:
    tenants: list[TenantPlan]
    inconsistencies: list[Inconsistency]
    users: int
    live_workspaces: int
    archived_workspaces: int
    platform_rows: int
    user_owned_rows: int
    projects_listed: int
    projects_ours: int  # named as the operator names projects

    def count(self, action: Action) -> int:
        return sum(1 for plan in self.tenants if plan.action is action)


@dataclasses.dataclass(frozen=True)
class _Wanted:
    tenant: Tenant
    user_id: str


def _wanted(inventory: AdoptionInventory) -> list[_Wanted]:
    """The tenants the Sim sync makes a database for: as ``sim_sync.desired`` chooses them."""
    wanted = [_Wanted(Tenant(Scope.GLOBAL, u), u) for u in sorted(inventory.user_ids) if valid_tenant_id(u)]
    wanted += [
        _Wanted(Tenant(Scope.WORKSPACE, w.id), w.owner_id)
        for w in inventory.workspaces
        if not w.archived and valid_tenant_id(w.id) and valid_tenant_id(w.owner_id)
    ]
    return wanted


def _resource(tenant: Tenant) -> tuple[str, str]:
    if tenant.scope is Scope.GLOBAL:
        return GLOBAL_DATABASE.kind, resource_name("user", tenant.id)
    return WORKSPACE_DATABASE.kind, resource_name("workspace", tenant.id)


def _decrypt(cipher: Cipher, stored: str | None) -> str | None:
    if not stored:
        return None
    try:
        return cipher.decrypt(stored)
    except ValueError:
        return None


class _Surveyor:
    def __init__(
        self, inventory: AdoptionInventory, projects: Sequence[Any], *, prefix: str, cipher: Cipher
    ) -> None:
        self.inventory = inventory
        self.cipher = cipher
        self.prefix = prefix
        self.projects = {str(p.id): str(p.name) for p in projects}
        self.platform = [row for row in inventory.databases if row.ownership_type == PLATFORM]
        self.rows = {row.tenant: row for row in inventory.databases}
        self.named = Counter(row.project_id for row in self.platform if row.project_id)
        self.problems: list[Inconsistency] = []

    def say(
        self, problem: Problem, detail: str, *, tenant: Tenant | None = None, project: str | None = None
    ) -> None:
        self.problems.append(
            Inconsistency(problem, tenant, project or None, self.projects.get(project or ""), detail)
        )

    def plan(self, wanted: _Wanted, namespace: str) -> TenantPlan:
        tenant = wanted.tenant
        row = self.rows.get(tenant)
        action, why = self._action(tenant, row)
        if action is Action.CREATE:
            self._check_unrecorded_env_var(tenant)
        elif action is Action.ADOPT and row is not None:
            self._check_env_var(tenant, row)
        kind, name = _resource(tenant)
        project = row.project_id if row is not None and row.project_id else None
        return TenantPlan(
            tenant=tenant,
            user_id=wanted.user_id,
            action=action,
            kind=kind,
            namespace=namespace,
            name=name,
            project_id=project,
            project_name=self.projects.get(project or ""),
            ownership_type=row.ownership_type if row is not None else None,
            why=why,
        )

    def _action(self, tenant: Tenant, row: RecordedDatabase | None) -> tuple[Action, str]:
        if row is None:
            return Action.CREATE, "no row: a new project"
        if row.ownership_type != PLATFORM:
            return (
                Action.LEAVE_ALONE,
                f"ownership_type {row.ownership_type!r}: the user's own database, never touched",
            )
        if not row.project_id:
            return Action.CREATE, "the row names no project: a new project"
        if row.project_id not in self.projects:
            self.say(
                Problem.PROJECT_NOT_FOUND,
                f"the row of {tenant.label} names Neon project {row.project_id}, which the "
                "organisation does not have: its resource would stay Ready=False (ProjectNotFound)",
                tenant=tenant,
                project=row.project_id,
            )
            return Action.BLOCKED, "the row's project is not in the organisation"
        if self.named[row.project_id] > 1:
            self.say(
                Problem.PROJECT_SHARED,
                f"Neon project {row.project_id} is named by {self.named[row.project_id]} rows, "
                f"{tenant.label}'s among them: only one resource can hold it (the others: Conflict)",
                tenant=tenant,
                project=row.project_id,
            )
            return Action.BLOCKED, "another row names the same project"
        return Action.ADOPT, "the platform's row names a live project: taken over, no new project"

    def _env(self, tenant: Tenant) -> tuple[bool, str | None]:
        """(present, decrypted value or None when unreadable); the problem said here."""
        stored = self.inventory.env_values.get(tenant)
        if stored is None:
            return False, None
        value = _decrypt(self.cipher, stored.encrypted)
        if value is None:
            why = (
                "cannot be decrypted with ENCRYPTION_KEY"
                if stored.readable
                else "is not a string in a JSON object, as Sim writes it"
            )
            self.say(Problem.ENV_VAR_UNREADABLE, f"{tenant.env_var} of {tenant.label} {why}", tenant=tenant)
        return True, value

    def _check_env_var(self, tenant: Tenant, row: RecordedDatabase) -> None:
        uri = _decrypt(self.cipher, row.encrypted_uri)
        if uri is None:
            self.say(
                Problem.URI_UNREADABLE,
                f"the connection string in the row of {tenant.label} cannot be decrypted with "
                "ENCRYPTION_KEY: the operator would write a new one from Neon",
                tenant=tenant,
                project=row.project_id,
            )
        present, value = self._env(tenant)
        if not present or value is None or uri is None or value == uri:
            return
        if same_database(value, uri):
            detail = (
                f"{tenant.env_var} of {tenant.label} reaches the row's database, with other "
                "credentials or options: the operator would write the row's"
            )
        else:
            detail = (
                f"{tenant.env_var} of {tenant.label} reaches another database than the row's: its "
                "resource would stop at Conflict, the env var left as it is"
            )
        self.say(Problem.ENV_VAR_DIFFERS, detail, tenant=tenant, project=row.project_id)

    def _check_unrecorded_env_var(self, tenant: Tenant) -> None:
        present, value = self._env(tenant)
        if present and value:
            self.say(
                Problem.ENV_VAR_WITHOUT_ROW,
                f"{tenant.env_var} of {tenant.label} holds a database URL, yet no row records a "
                "project: its new resource would stop at Conflict until the env var is removed",
                tenant=tenant,
            )

    def unclaimed_rows(self, wanted: Iterable[_Wanted]) -> None:
        """Platform rows of users or workspaces the sync makes nothing for."""
        live = {w.tenant for w in wanted}
        archived = {w.id for w in self.inventory.workspaces if w.archived}
        for row in self.platform:
            if row.tenant in live:
                continue
            tenant = row.tenant
            if tenant.scope is Scope.WORKSPACE and tenant.id in archived:
                gone = "Sim archived the workspace"
            elif not valid_tenant_id(tenant.id):
                gone = "its id cannot name a resource"
            else:
                gone = f"Sim has no such {tenant.scope.owner}"
            still = " (its project still exists)" if row.project_id in self.projects else ""
            self.say(
                Problem.ROW_WITHOUT_TENANT,
                f"the row of {tenant.label} is left as it is: {gone}{still}",
                tenant=tenant,
                project=row.project_id,
            )

    def unnamed_projects(self) -> int:
        """Projects named as ours that no row names (those kept on purpose are on record)."""
        named = {row.project_id for row in self.inventory.databases}
        ours = 0
        for project_id, name in sorted(self.projects.items()):
            if owner_uid(self.prefix, name) is None:
                continue
            ours += 1
            recorded = self.inventory.left_behind.get(project_id)
            if project_id in named or recorded == "retained":
                continue
            on_record = f" (on record as {recorded})" if recorded else ""
            self.say(
                Problem.PROJECT_WITHOUT_ROW,
                f"Neon project {project_id} is named as the operator names its projects, yet no row "
                f"names it{on_record}",
                project=project_id,
            )
        return ours


def survey(
    inventory: AdoptionInventory,
    projects: Sequence[Any],
    *,
    prefix: str,
    namespace: str,
    cipher: Cipher,
) -> Survey:
    """What switching on would do; ``projects``: every live project of the organisation."""
    surveyor = _Surveyor(inventory, projects, prefix=prefix, cipher=cipher)
    wanted = _wanted(inventory)
    plans = [surveyor.plan(w, namespace) for w in wanted]
    surveyor.unclaimed_rows(wanted)
    ours = surveyor.unnamed_projects()
    order: Mapping[Action, int] = {action: index for index, action in enumerate(Action)}
    plans.sort(key=lambda p: (order[p.action], p.tenant.scope.value, p.tenant.id))
    problems = sorted(
        surveyor.problems,
        key=lambda i: (i.problem.value, i.project_id or "", i.tenant.id if i.tenant else ""),
    )
    return Survey(
        tenants=plans,
        inconsistencies=problems,
        users=len(inventory.user_ids),
        live_workspaces=sum(1 for w in inventory.workspaces if not w.archived),
        archived_workspaces=sum(1 for w in inventory.workspaces if w.archived),
        platform_rows=len(surveyor.platform),
        user_owned_rows=len(inventory.databases) - len(surveyor.platform),
        projects_listed=len(projects),
        projects_ours=ours,
    )

"""tenantdb adopt --dry-run's decisions, tenant by tenant, and its output: what would be adopted,
created, left alone or blocked, what is inconsistent, and never a URI or a password."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tenantdb.api import Scope, Tenant
from tenantdb.crypto import EncryptionKey
from tenantdb.reconcile.adoption import Action, Problem, Survey, survey
from tenantdb.reconcile.adoption.report import as_json, as_text
from tenantdb.store import AdoptionInventory, EnvValue, RecordedDatabase, SimWorkspaceRow

KEY = EncryptionKey("0f" * 32)
PASSWORD = "s3cret-Pa55word"
UID = "0f1e2d3c-0000-4000-8000-000000000001"


@dataclasses.dataclass
class Project:
    id: str
    name: str


def _uri(host: str, password: str = PASSWORD, database: str = "neondb") -> str:
    return f"postgresql://neondb_owner:{password}@{host}/{database}?sslmode=require"


def _row(
    tenant: Tenant, project: str, *, ownership: str = "platform", uri: str | None = None
) -> RecordedDatabase:
    return RecordedDatabase(
        tenant=tenant,
        ownership_type=ownership,
        project_id=project,
        branch_id=f"br-{project}",
        database_name="neondb",
        encrypted_uri=KEY.encrypt(uri or _uri(f"{project}.neon.example")),
    )


def _survey(inventory: AdoptionInventory, projects: list[Project]) -> Survey:
    return survey(inventory, projects, prefix="tenantdb", namespace="sim", cipher=KEY)


def _action(result: Survey, tenant: Tenant) -> Action:
    return next(p.action for p in result.tenants if p.tenant == tenant)


def _problems(result: Survey) -> list[tuple[Problem, str | None]]:
    return [(i.problem, i.tenant.id if i.tenant else i.project_id) for i in result.inconsistencies]


ADA, BOB, CAY, DEE = (Tenant(Scope.GLOBAL, u) for u in ("ada", "bob", "cay", "dee"))
WS = Tenant(Scope.WORKSPACE, "ws-1")


def _inventory(**parts: Any) -> AdoptionInventory:
    inventory = AdoptionInventory(
        user_ids={"ada", "bob", "cay", "dee"},
        workspaces=[SimWorkspaceRow("ws-1", "ada", archived=False)],
    )
    for name, value in parts.items():
        setattr(inventory, name, value)
    return inventory


def test_each_tenant_gets_one_action_from_its_row_and_neons_list() -> None:
    inventory = _inventory(
        databases=[
            _row(ADA, "p-ada"),  # the platform's, live: adopted
            _row(BOB, ""),  # a row without a project: created
            _row(CAY, "p-cay", ownership="user"),  # the user's own: left alone, even unknown to us
            _row(WS, "p-ws"),
        ],
        env_values={ADA: EnvValue(KEY.encrypt(_uri("p-ada.neon.example")))},
    )
    result = _survey(inventory, [Project("p-ada", "sim-ada"), Project("p-ws", "sim-ws")])
    assert _action(result, ADA) is Action.ADOPT
    assert _action(result, WS) is Action.ADOPT
    assert _action(result, BOB) is Action.CREATE
    assert _action(result, DEE) is Action.CREATE  # no row at all
    assert _action(result, CAY) is Action.LEAVE_ALONE
    assert result.inconsistencies == []  # the user's own project is none of our business
    plan = next(p for p in result.tenants if p.tenant == WS)
    assert (plan.kind, plan.namespace, plan.name, plan.user_id) == (
        "WorkspaceDatabase",
        "sim",
        "workspace-ws-1",
        "ada",
    )
    assert (plan.project_id, plan.project_name) == ("p-ws", "sim-ws")
    assert (result.platform_rows, result.user_owned_rows) == (3, 1)


def test_a_row_naming_a_missing_or_shared_project_is_blocked_and_said() -> None:
    inventory = _inventory(databases=[_row(ADA, "p-gone"), _row(BOB, "p-both"), _row(WS, "p-both")])
    result = _survey(inventory, [Project("p-both", "sim-shared")])
    assert [_action(result, t) for t in (ADA, BOB, WS)] == [Action.BLOCKED] * 3
    assert sorted(_problems(result)) == [
        (Problem.PROJECT_NOT_FOUND, "ada"),
        (Problem.PROJECT_SHARED, "bob"),
        (Problem.PROJECT_SHARED, "ws-1"),
    ]


def test_an_env_var_that_is_not_the_rows_uri_is_said_without_either() -> None:
    other_db = _uri("elsewhere.example")
    other_password = _uri("p-bob.neon.example", password="another-Pa55word")
    inventory = _inventory(
        databases=[_row(ADA, "p-ada"), _row(BOB, "p-bob"), _row(CAY, "p-cay", ownership="user")],
        env_values={
            ADA: EnvValue(KEY.encrypt(other_db)),
            BOB: EnvValue(KEY.encrypt(other_password)),
            CAY: EnvValue(KEY.encrypt(other_db)),  # the user's own: not compared
            DEE: EnvValue(KEY.encrypt(other_db)),  # no row, yet a URL: the new resource would conflict
        },
    )
    result = _survey(inventory, [Project("p-ada", "a"), Project("p-bob", "b")])
    problems = {(i.problem, i.tenant.id if i.tenant else None): i.detail for i in result.inconsistencies}
    assert set(problems) == {
        (Problem.ENV_VAR_DIFFERS, "ada"),
        (Problem.ENV_VAR_DIFFERS, "bob"),
        (Problem.ENV_VAR_WITHOUT_ROW, "dee"),
    }
    assert "another database" in problems[Problem.ENV_VAR_DIFFERS, "ada"]
    assert "other credentials" in problems[Problem.ENV_VAR_DIFFERS, "bob"]
    for text in (
        as_text(result, org_id="org-1", neon_calls=3),
        as_json(result, org_id="org-1", neon_calls=3),
    ):
        assert PASSWORD not in text
        assert "another-Pa55word" not in text
        assert "postgresql://" not in text
        assert "elsewhere.example" not in text


def test_what_cannot_be_read_is_said() -> None:
    other_key = EncryptionKey("1e" * 32)
    inventory = _inventory(
        databases=[
            dataclasses.replace(_row(ADA, "p-ada"), encrypted_uri=other_key.encrypt(_uri("x"))),
            _row(BOB, "p-bob"),
        ],
        env_values={BOB: EnvValue(None), DEE: EnvValue(other_key.encrypt(_uri("y")))},
    )
    result = _survey(inventory, [Project("p-ada", "a"), Project("p-bob", "b")])
    assert sorted(_problems(result)) == [
        (Problem.ENV_VAR_UNREADABLE, "bob"),
        (Problem.ENV_VAR_UNREADABLE, "dee"),
        (Problem.URI_UNREADABLE, "ada"),
    ]
    assert _action(result, ADA) is Action.ADOPT  # the operator writes a fresh URI from Neon


def test_rows_of_tenants_sim_no_longer_has_and_our_projects_without_a_row_are_said() -> None:
    ours, kept, lost = (f"tenantdb-g-{who}-{UID[:-1]}{n}" for n, who in enumerate(("x", "k", "l")))
    inventory = _inventory(
        workspaces=[SimWorkspaceRow("ws-1", "ada", archived=True)],
        databases=[_row(WS, "p-ws"), _row(Tenant(Scope.GLOBAL, "zed"), "p-zed")],
        left_behind={"p-kept": "retained", "p-lost": "orphaned"},
    )
    projects = [
        Project("p-ws", "sim-ws"),
        Project("p-ours", ours),
        Project("p-kept", kept),
        Project("p-lost", lost),
        Project("p-theirs", "someone-else"),
    ]
    result = _survey(inventory, projects)
    problems = {(i.problem, i.project_id): i.detail for i in result.inconsistencies}
    assert set(problems) == {
        (Problem.ROW_WITHOUT_TENANT, "p-ws"),
        (Problem.ROW_WITHOUT_TENANT, "p-zed"),
        (Problem.PROJECT_WITHOUT_ROW, "p-ours"),
        (Problem.PROJECT_WITHOUT_ROW, "p-lost"),  # the retained one is on record on purpose
    }
    assert "archived" in problems[Problem.ROW_WITHOUT_TENANT, "p-ws"]
    assert "on record as orphaned" in problems[Problem.PROJECT_WITHOUT_ROW, "p-lost"]
    assert WS not in {p.tenant for p in result.tenants}  # an archived workspace gets nothing
    assert (result.projects_listed, result.projects_ours) == (5, 3)


def test_the_json_keys_are_the_documented_ones() -> None:
    inventory = _inventory(databases=[_row(ADA, "p-gone")])
    document = json.loads(as_json(_survey(inventory, []), org_id="org-1", neon_calls=2))
    assert set(document) == {
        "schemaVersion", "dryRun", "orgId", "neonCalls", "sim", "rows", "projects", "counts",
        "tenants", "inconsistencies",
    }  # fmt: skip
    assert (document["schemaVersion"], document["dryRun"], document["neonCalls"]) == (1, True, 2)
    assert set(document["sim"]) == {"users", "liveWorkspaces", "archivedWorkspaces"}
    assert set(document["rows"]) == {"platform", "userOwned"}
    assert set(document["projects"]) == {"listed", "namedAsOurs"}
    assert document["counts"] == {
        "adopt": 0,
        "create": 4,
        "leaveAlone": 0,
        "blocked": 1,
        "inconsistencies": 1,
    }
    assert set(document["tenants"][0]) == {
        "action", "scope", "tenantId", "userId", "kind", "namespace", "name", "projectId",
        "projectName", "ownershipType", "why",
    }  # fmt: skip
    assert set(document["inconsistencies"][0]) == {
        "problem", "scope", "tenantId", "projectId", "projectName", "detail",
    }  # fmt: skip
    assert document["inconsistencies"][0]["problem"] == "project-not-found"

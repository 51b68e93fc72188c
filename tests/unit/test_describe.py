"""``tenantdb describe`` without a metadata DB, and what it makes of odd or partial status."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

from tenantdb.api import Scope, Tenant
from tenantdb.reconcile.describe import as_json, as_text, describe_tenant
from tests.factories import database_budget, global_database

NOW = datetime.datetime(2026, 12, 10, 12, 0, tzinfo=datetime.UTC)


class Objects:
    def __init__(self, *objects: Mapping[str, Any]) -> None:
        self.objects = objects

    async def list_objects(self, plural: str) -> Sequence[Mapping[str, Any]]:
        kinds = {"globaldatabases": "GlobalDatabase", "workspacedatabases": "WorkspaceDatabase"}
        kind = kinds.get(plural, "DatabaseBudget")
        return [o for o in self.objects if o["kind"] == kind]


async def test_without_a_metadata_db_the_kubernetes_side_is_shown_and_the_gap_said() -> None:
    suspended = global_database("user-ann", "ann")
    suspended["status"] = {
        "phase": "Suspended",
        "projectId": "p-1",
        "endpointId": "ep-1",
        "credentialsRotatedAt": "2026-12-09T12:00:00Z",
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "BudgetExceeded",
                "lastTransitionTime": "2026-12-10T10:00:00Z",
                "message": "User ann is over budget: connections are refused",
            },
        ],
    }
    budget = database_budget("budget-ann", "ann")
    budget["status"] = {
        "tier": "free",
        "limitCents": 500,
        "totalCostCents": 612,
        "exceeded": True,
        "conditions": "not a list",
    }
    other_user = global_database("user-bob", "bob")

    report = await describe_tenant(
        Tenant(Scope.GLOBAL, "ann"),
        kube=Objects(suspended, budget, other_user),
        store=None,
        project_prefix="tenantdb",
        now=NOW,
    )

    text = as_text(report)
    assert "Suspended     yes, since 2026-12-10T10:00:00Z (2h ago)" in text
    assert "why         User ann is over budget: connections are refused" in text
    assert "612 cents of 500 cents (122%)" in text
    assert "last rotated 2026-12-09T12:00:00Z (1d ago)" in text
    assert "metadata DB is not configured" in text
    assert "user-bob" not in text
    plain = as_json(report)
    json.dumps(plain)  # JSON all the way down
    assert [r["name"] for r in plain["resources"]] == ["user-ann"]
    assert plain["resources"][0]["compute"] == "disabled (suspended)"
    assert plain["budget"]["exceededSince"] is None  # the conditions were not a list: absent, no error
    assert plain["decisions"] == []


async def test_a_tenant_with_nothing_yet_says_what_is_missing_plainly() -> None:
    fresh = global_database("user-cy", "cy")  # no status at all yet
    report = await describe_tenant(
        Tenant(Scope.GLOBAL, "cy"), kube=Objects(fresh), store=None, project_prefix="tenantdb", now=NOW
    )
    text = as_text(report)
    assert "Budget        none (the default tier applies)" in text
    assert "Suspended     no" in text
    assert "Compute      endpoint -: none yet" in text

"""The database status as a model: wire round trip, partial merge patches, lenient decoding,
and the writes a reconcile makes around a create (only what changed, nothing cleared by accident)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tenantdb.api import Condition, ConditionStatus, DatabaseStatus, Phase
from tenantdb.neon.errors import NeonBadRequestError
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.database import reconcile_database
from tenantdb.reconcile.errors import ReconcileError
from tests.factories import RecordedEvents, StatusWrites, database_deps, database_object

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)

WIRE: dict[str, Any] = {
    "phase": "Ready",
    "projectId": "p-1",
    "projectName": "tenantdb-g-uid",
    "branchId": "br-1",
    "endpointId": "ep-1",
    "host": "ep-1.example.neon.tech",
    "databaseName": "neondb",
    "roleName": "neondb_owner",
    "secretName": "g-connection",
    "region": "aws-us-east-2",
    "pgVersion": 17,
    "currentPeriodCostCents": 12,
    "lastConsumptionSync": "2026-01-01T11:45:00Z",
    "observedGeneration": 2,
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Available",
            "message": "Database ready in Neon project p-1",
            "lastTransitionTime": "2026-01-01T11:00:00Z",
            "observedGeneration": 2,
        },
        {
            "type": "Synced",
            "status": "True",
            "reason": "ReconcileSuccess",
            "message": "Neon, the Secret and the metadata DB match the spec",
            "lastTransitionTime": "2026-01-01T11:00:00Z",
            "observedGeneration": 2,
        },
    ],
}


def test_a_status_survives_model_to_wire_to_model() -> None:
    status = DatabaseStatus.decode(WIRE)
    assert status.phase is Phase.READY
    assert status.project_id == "p-1"
    assert status.conditions[0].status is ConditionStatus.TRUE
    assert status.to_wire() == WIRE
    assert status.to_patch() == WIRE
    assert DatabaseStatus.decode(status.to_wire()) == status


def test_a_patch_carries_only_the_fields_set_and_clears_only_on_purpose() -> None:
    patch = DatabaseStatus(project_id="p-1", create_attempted_at=None).to_patch()
    assert patch == {"projectId": "p-1", "createAttemptedAt": None}
    assert DatabaseStatus().to_patch() == {}


def test_conditions_in_a_patch_carry_no_nulls() -> None:
    conditions = cond.set_condition(
        [], kind=cond.READY, status=True, reason="Available", message="ok", now=NOW
    )
    [ready] = DatabaseStatus(conditions=conditions).to_patch()["conditions"]
    assert ready == {
        "type": "Ready",
        "status": "True",
        "reason": "Available",
        "message": "ok",
        "lastTransitionTime": "2026-01-01T12:00:00Z",
    }


def test_merged_applies_a_patch_as_a_merge_patch_does() -> None:
    base = DatabaseStatus.decode({"phase": "Provisioning", "createAttemptedAt": "2026-01-01T11:59:00Z"})
    merged = base.merged(DatabaseStatus(project_id="p-1", create_attempted_at=None))
    assert merged.phase is Phase.PROVISIONING
    assert merged.project_id == "p-1"
    assert merged.create_attempted_at is None
    assert merged.to_patch() == {"phase": "Provisioning", "projectId": "p-1", "createAttemptedAt": None}


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ({"projectId": "p-1", "pgVersion": "seventeen"}, {"projectId": "p-1"}),
        ({"projectId": "p-1", "phase": "Sleeping"}, {"projectId": "p-1"}),
        (
            {"phase": "Ready", "conditions": [{"type": "Ready"}, WIRE["conditions"][1]]},
            {"phase": "Ready", "conditions": [WIRE["conditions"][1]]},
        ),
        ({"somethingElse": 1}, {}),
    ],
)
def test_a_status_that_does_not_fit_keeps_what_does(raw: dict[str, Any], kept: dict[str, Any]) -> None:
    """Status is a record anyone with status rights may write: a bad field is left out, not fatal."""
    assert DatabaseStatus.decode(raw).to_patch() == kept


class _RefusingNeon:
    async def create_project(self, **_: Any) -> Any:
        raise NeonBadRequestError(status=400, code="", message="bad region", route="POST /projects")


async def test_a_refused_create_writes_its_attempt_then_clears_only_that() -> None:
    obj = database_object(uid="uid-3", user_id="u3", generation=4)
    deps = database_deps(_RefusingNeon(), clock=lambda: NOW)
    record = StatusWrites()
    writes = record.patches

    with pytest.raises(ReconcileError):
        await reconcile_database(obj, deps, RecordedEvents(), record)
    assert writes == [
        {
            "phase": "Provisioning",
            "createAttemptedAt": "2026-01-01T12:00:00Z",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "Creating",
                    "message": "Creating the Neon project",
                    "lastTransitionTime": "2026-01-01T12:00:00Z",
                    "observedGeneration": 4,
                }
            ],
        },
        {"createAttemptedAt": None},
    ]
    assert Condition.model_validate(writes[0]["conditions"][0]).status is ConditionStatus.FALSE

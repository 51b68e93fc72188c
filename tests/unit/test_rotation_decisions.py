"""When a reconcile rotates a database's password: the annotation (once per value), a rotation
under way (finished whatever the body says), and the password's age."""

from __future__ import annotations

import dataclasses
import datetime

from tenantdb.api.databases import CredentialsSpec, DatabaseStatus
from tenantdb.config import Settings
from tenantdb.reconcile.database.credentials import Why, due_at, rotation_pending, why_rotate
from tenantdb.reconcile.database.model import DatabaseObject, RotationRecord
from tenantdb.reconcile.database.rotate import with_password
from tests.factories import KEY, database_object

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
SETTINGS = Settings(encryption_key=KEY)


def _obj(
    *, annotation: str | None = None, days: int | None = None, created_days_ago: int = 1, **status: str
) -> DatabaseObject:
    obj = database_object(uid="uid-1", user_id="ann")
    spec = obj.spec.model_copy(update={"credentials": CredentialsSpec(rotate_after_days=days)})
    return dataclasses.replace(
        obj,
        spec=spec,
        status=DatabaseStatus(**status),
        rotate_request=annotation,
        created_at=NOW - datetime.timedelta(days=created_days_ago),
    )


def _why(
    obj: DatabaseObject, rotations: dict[str, RotationRecord] | None = None, *, by_age: bool = False
) -> Why | None:
    return why_rotate(obj, SETTINGS, rotations or {}, by_age=by_age, now=NOW)


def test_a_new_annotation_value_asks_for_one_rotation() -> None:
    assert _why(_obj(annotation="a")) is Why.REQUESTED
    assert _why(_obj(annotation="a", credentials_rotation_handled="a")) is None
    assert _why(_obj(annotation="b", credentials_rotation_handled="a")) is Why.REQUESTED
    assert _why(_obj()) is None


def test_a_body_from_before_this_process_rotated_does_not_rotate_again() -> None:
    done = {"uid-1": RotationRecord(started_at="2026-06-01T11:59:00.000000Z", rotated_at=NOW, handled="a")}
    assert _why(_obj(annotation="a"), done) is None
    # ... nor keep "under way" the rotation it finished.
    assert (
        _why(_obj(annotation="a", credentials_rotation_started_at="2026-06-01T11:59:00.000000Z"), done)
        is None
    )
    assert not rotation_pending(_obj(annotation="a"), done)


def test_a_rotation_under_way_is_finished_by_any_reconcile() -> None:
    obj = _obj(credentials_rotation_started_at="2026-06-01T11:59:00.000000Z")
    assert _why(obj) is Why.RESUMED
    assert rotation_pending(obj, {})
    # A later rotation under way is not the one this process finished.
    done = {"uid-1": RotationRecord(started_at="2026-06-01T11:00:00.000000Z", rotated_at=NOW, handled=None)}
    assert _why(obj, done) is Why.RESUMED


def test_a_password_old_enough_rotates_only_on_the_fleets_turn() -> None:
    old = _obj(days=30, created_days_ago=31)
    assert _why(old) is None
    assert not rotation_pending(old, {})
    assert _why(old, by_age=True) is Why.DUE
    assert _why(_obj(days=30, created_days_ago=29), by_age=True) is None
    rotated = _obj(days=30, created_days_ago=400, credentials_rotated_at="2026-05-20T00:00:00Z")
    assert _why(rotated, by_age=True) is None
    assert due_at(rotated, SETTINGS, {}) == datetime.datetime(2026, 6, 19, tzinfo=datetime.UTC)


def test_the_operators_setting_is_the_default_age_and_none_means_never() -> None:
    old = _obj(created_days_ago=100)
    assert due_at(old, SETTINGS, {}) is None
    assert due_at(
        old, Settings(encryption_key=KEY, rotate_credentials_after_days=90), {}
    ) == NOW + datetime.timedelta(days=-10)
    spec_wins = _obj(days=7, created_days_ago=100)
    assert due_at(
        spec_wins, Settings(encryption_key=KEY, rotate_credentials_after_days=90), {}
    ) == NOW - datetime.timedelta(days=93)


def test_the_new_password_goes_into_the_connection_string_and_nothing_else_changes() -> None:
    uri = "postgresql://neondb_owner:old-pw@ep-x.aws.neon.tech:5432/neondb?sslmode=require"
    assert with_password(uri, "n3w/p@ss") == (
        "postgresql://neondb_owner:n3w%2Fp%40ss@ep-x.aws.neon.tech:5432/neondb?sslmode=require"
    )
    assert with_password("postgresql://role@host/db", "pw") == "postgresql://role:pw@host/db"

"""A failed status write goes through the same error translation as every other outside call."""

from __future__ import annotations

from typing import Any

import pytest

from tenantdb.kube import KubeError
from tenantdb.reconcile.database import reconcile_database
from tenantdb.reconcile.errors import RetryLater
from tests.factories import RecordedEvents, StatusWrites, database_deps, database_object


@pytest.mark.parametrize("status", [500, 409])
async def test_a_failed_status_write_is_retried_later_not_raised_raw(status: int) -> None:
    obj = database_object(uid="uid-1", user_id="u1")
    deps = database_deps()  # Neon is never reached
    failing_write = StatusWrites(KubeError(f"patching status failed: HTTP {status}", status=status))

    with pytest.raises(RetryLater) as caught:
        await reconcile_database(obj, deps, RecordedEvents(), failing_write)
    assert caught.value.delay <= 15
    assert "recording the status" in caught.value.message


class _CreatingNeon:
    def __init__(self) -> None:
        self.searches = 0

    async def create_project(self, **_: Any) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(project=SimpleNamespace(id="p-made"))

    async def find_projects(self, *, search: str) -> list[Any]:
        self.searches += 1
        return []


async def test_a_project_just_made_is_remembered_even_when_recording_it_fails() -> None:
    """The next attempt then knows the project is its own: no search, no 'Adopted' event."""
    obj = database_object(uid="uid-2", user_id="u2")
    neon = _CreatingNeon()
    deps = database_deps(neon)
    # The second write, the one that records the project id, fails.
    second_write_fails = StatusWrites(KubeError("patching status failed: HTTP 500", status=500), failing={2})
    writes = second_write_fails.statuses

    with pytest.raises(RetryLater):
        await reconcile_database(obj, deps, RecordedEvents(), second_write_fails)
    assert writes[1].to_patch()["projectId"] == "p-made"
    assert deps.known_projects["uid-2"] == "p-made"
    assert neon.searches == 0

"""A failed status write goes through the same error translation as every other outside call."""

from __future__ import annotations

from typing import Any

import pytest

from tenantdb.api import Scope, Tenant
from tenantdb.api.databases import DatabaseStatus, GlobalDatabaseSpec
from tenantdb.config import Settings
from tenantdb.crypto import EncryptionKey
from tenantdb.kube import KubeError, OwnerReference
from tenantdb.reconcile.database import DatabaseDeps, DatabaseObject, reconcile_database
from tenantdb.reconcile.errors import RetryLater
from tenantdb.reconcile.naming import DatabaseIdentity

KEY = "ab" * 32


class _Claims:
    async def claim_tenant(self, *, kind: str, tenant_id: str, claimant: Any) -> Any:
        return claimant


class _NoSecret:
    async def read_secret_state(self, *, namespace: str, name: str, owner_uid: str) -> None:
        return None


class _Events:
    def normal(self, reason: str, message: str) -> None: ...
    def warning(self, reason: str, message: str) -> None: ...


@pytest.mark.parametrize("status", [500, 409])
async def test_a_failed_status_write_is_retried_later_not_raised_raw(status: int) -> None:
    identity = DatabaseIdentity(
        kind="GlobalDatabase",
        namespace="default",
        name="g",
        uid="uid-1",
        user_id="u1",
        tenant=Tenant(Scope.GLOBAL, "u1"),
    )
    obj = DatabaseObject(
        identity=identity,
        generation=1,
        spec=GlobalDatabaseSpec.model_validate({"userId": "u1"}),
        status=DatabaseStatus(),
        owner=OwnerReference(
            api_version="tenantdb.io/v1alpha1", kind="GlobalDatabase", name="g", uid="uid-1"
        ),
    )
    deps = DatabaseDeps(
        neon=object(),  # type: ignore[arg-type]  # never reached
        secrets=_NoSecret(),  # type: ignore[arg-type]
        metadata=_Claims(),  # type: ignore[arg-type]
        cipher=EncryptionKey(KEY),
        settings=Settings(encryption_key=KEY, neon_api_key="k", metadata_database_url="postgresql://x"),
    )

    async def failing_write(_: DatabaseStatus) -> None:
        raise KubeError(f"patching status failed: HTTP {status}", status=status)

    with pytest.raises(RetryLater) as caught:
        await reconcile_database(obj, deps, _Events(), failing_write)
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
    identity = DatabaseIdentity(
        kind="GlobalDatabase",
        namespace="default",
        name="g",
        uid="uid-2",
        user_id="u2",
        tenant=Tenant(Scope.GLOBAL, "u2"),
    )
    obj = DatabaseObject(
        identity=identity,
        generation=1,
        spec=GlobalDatabaseSpec.model_validate({"userId": "u2"}),
        status=DatabaseStatus(),
        owner=OwnerReference(
            api_version="tenantdb.io/v1alpha1", kind="GlobalDatabase", name="g", uid="uid-2"
        ),
    )
    neon = _CreatingNeon()
    deps = DatabaseDeps(
        neon=neon,  # type: ignore[arg-type]
        secrets=_NoSecret(),  # type: ignore[arg-type]
        metadata=_Claims(),  # type: ignore[arg-type]
        cipher=EncryptionKey(KEY),
        settings=Settings(encryption_key=KEY, neon_api_key="k", metadata_database_url="postgresql://x"),
    )
    writes: list[DatabaseStatus] = []

    async def second_write_fails(status: DatabaseStatus) -> None:
        writes.append(status)
        if len(writes) == 2:  # the write that records the project id
            raise KubeError("patching status failed: HTTP 500", status=500)

    with pytest.raises(RetryLater):
        await reconcile_database(obj, deps, _Events(), second_write_fails)
    assert writes[1].to_patch()["projectId"] == "p-made"
    assert deps.known_projects["uid-2"] == "p-made"
    assert neon.searches == 0

"""The Sim sync's loop against in-memory stand-ins for Sim's tables and the API server."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from tenantdb.config import Settings
from tenantdb.reconcile.sim_sync import SimSync
from tenantdb.store import Fingerprint, SimSnapshot

USER = "0b6c9d3e-1f2a-4b5c-8d7e-9f0a1b2c3d4e"


class Tables:
    """Sim's tables as a set of user ids; ``on_fingerprint`` runs right after a fingerprint read."""

    def __init__(self) -> None:
        self.users: dict[str, datetime.datetime] = {}
        self.on_fingerprint: list[Any] = []

    def _fingerprint(self) -> Fingerprint:
        return Fingerprint(
            len(self.users), max(self.users.values(), default=None), 0, 0, None, "", "", "", None
        )

    async def sim_fingerprint(self) -> Fingerprint:
        seen = self._fingerprint()
        while self.on_fingerprint:
            self.on_fingerprint.pop(0)()
        return seen

    async def sim_snapshot(self) -> tuple[Fingerprint, SimSnapshot]:
        return self._fingerprint(), SimSnapshot(user_ids=set(self.users))

    async def sim_new_rows(
        self, *, users_after: datetime.datetime | None, workspaces_after: datetime.datetime | None
    ) -> tuple[Fingerprint, SimSnapshot, int, int]:
        new = {u for u, t in self.users.items() if users_after is None or t > users_after}
        return self._fingerprint(), SimSnapshot(user_ids=new), len(new), 0

    async def restore_user_env_var(
        self, *, key: str, since: datetime.datetime | None
    ) -> tuple[int, datetime.datetime | None]:
        return 0, None


class Resources:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}

    async def list(self, *, plural: str, namespace: str) -> list[dict[str, Any]]:
        return [o for (p, _), o in self.objects.items() if p == plural]

    async def get(self, *, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, name))

    async def create(self, *, plural: str, namespace: str, body: Mapping[str, Any]) -> bool:
        key = (plural, body["metadata"]["name"])
        if key in self.objects:
            return False
        self.objects[key] = dict(body)
        return True

    async def patch(self, *, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        self.objects[(plural, name)]["spec"].update(patch["spec"])

    async def delete(self, *, plural: str, namespace: str, name: str) -> None:
        self.objects.pop((plural, name), None)


async def _no_events(kind: str, name: str, reason: str, message: str, *, namespace: str = "") -> None:
    return None


def _sync(tables: Tables, resources: Resources) -> SimSync:
    settings = Settings(encryption_key="ab" * 32, sim_sync=True)
    return SimSync(settings=settings, tables=tables, resources=resources, post_event=_no_events)


async def test_a_user_registered_during_a_pass_and_deleted_before_the_next_poll_is_noticed() -> None:
    tables, resources = Tables(), Resources()
    sync = _sync(tables, resources)
    # Sim commits the registration between the pass's fingerprint and its snapshot.
    tables.on_fingerprint.append(lambda: tables.users.update({USER: datetime.datetime(2026, 1, 1)}))
    await sync.run_once()
    assert ("databasebudgets", f"user-{USER}") in resources.objects
    # The user is deleted before the next poll: Sim is back to the fingerprint read first.
    del tables.users[USER]
    result = await sync.run_once()
    assert result is not None
    assert result.deleted == 2
    assert resources.objects == {}


async def test_a_registration_creates_from_the_new_rows_alone() -> None:
    tables, resources = Tables(), Resources()
    sync = _sync(tables, resources)
    assert await sync.run_once() is not None  # the first, full pass
    assert await sync.run_once() is None  # nothing changed: one query, nothing else
    tables.users[USER] = datetime.datetime(2026, 1, 1)
    result = await sync.run_once()
    assert result is not None
    assert (result.full, result.created) == (False, 2)

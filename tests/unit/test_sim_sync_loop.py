"""The Sim sync's loop against in-memory stand-ins for Sim's tables and the API server."""

from __future__ import annotations

import asyncio
import copy
import datetime
import logging
import time
from collections.abc import Mapping
from typing import Any

import pytest

from tenantdb.config import Settings
from tenantdb.metrics import Metrics
from tenantdb.reconcile.sim_sync import SimSync, loop
from tenantdb.store import Fingerprint, SimSnapshot, TenantRow

USER = "0b6c9d3e-1f2a-4b5c-8d7e-9f0a1b2c3d4e"


class Tables:
    """Sim's tables as a set of user ids; ``on_fingerprint`` runs right after a fingerprint read.
    ``rows``: the users' ``user_global_database`` rows."""

    def __init__(self) -> None:
        self.users: dict[str, datetime.datetime] = {}
        self.rows: dict[str, TenantRow] = {}
        self.subscriptions: list[tuple[str, str]] = []
        self.on_fingerprint: list[Any] = []
        self.snapshot_started = asyncio.Event()
        self.snapshot_hangs = False

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
        self.snapshot_started.set()
        if self.snapshot_hangs:
            await asyncio.Event().wait()  # a connection that never answers
        snapshot = SimSnapshot(
            user_ids=set(self.users),
            user_database_rows=dict(self.rows),
            subscriptions=list(self.subscriptions),
        )
        return self._fingerprint(), snapshot

    async def sim_new_rows(
        self, *, users_after: datetime.datetime | None, workspaces_after: datetime.datetime | None
    ) -> tuple[Fingerprint, SimSnapshot, int, int]:
        new = {u for u, t in self.users.items() if users_after is None or t > users_after}
        rows = {u: row for u, row in self.rows.items() if u in new}
        return self._fingerprint(), SimSnapshot(user_ids=new, user_database_rows=rows), len(new), 0

    async def restore_user_env_var(
        self, *, key: str, since: datetime.datetime | None
    ) -> tuple[int, datetime.datetime | None]:
        return 0, None


class Resources:
    """The API server's side; every write recorded in ``writes`` as (verb, kind, name), and
    ``seconds_per_write`` added to ``clock`` (a write's time, as a fake clock sees it)."""

    def __init__(self, clock: FakeClock | None = None, seconds_per_write: float = 0.0) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []
        self._clock = clock
        self._seconds_per_write = seconds_per_write

    def _wrote(self, verb: str, plural: str, name: str) -> None:
        self.writes.append((verb, plural, name))
        if self._clock is not None:
            self._clock.now += self._seconds_per_write

    async def list(self, *, plural: str, namespace: str) -> list[dict[str, Any]]:
        return [o for (p, _), o in self.objects.items() if p == plural]

    async def get(self, *, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, name))

    async def create(self, *, plural: str, namespace: str, body: Mapping[str, Any]) -> bool:
        key = (plural, body["metadata"]["name"])
        self._wrote("create", plural, key[1])
        if key in self.objects:
            return False
        self.objects[key] = copy.deepcopy(dict(body))
        return True

    async def patch(self, *, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        self._wrote("patch", plural, name)
        self.objects[(plural, name)]["spec"].update(patch["spec"])

    async def delete(self, *, plural: str, namespace: str, name: str) -> None:
        self._wrote("delete", plural, name)
        self.objects.pop((plural, name), None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _no_events(
    kind: str, name: str, reason: str, message: str, *, namespace: str = "", type_: str = "Normal"
) -> None:
    return None


def _sync(
    tables: Tables, resources: Resources, *, clock: FakeClock | None = None, metrics: Metrics | None = None
) -> SimSync:
    settings = Settings(encryption_key="ab" * 32, sim_sync=True)
    return SimSync(
        settings=settings,
        tables=tables,
        resources=resources,
        post_event=_no_events,
        metrics=metrics or Metrics(),
        clock=clock or time.monotonic,
    )


def _users(tables: Tables, count: int, *, day: int = 1) -> list[str]:
    """``count`` users registered on the given day of 2026 (ids in registration order)."""
    ids = [f"{day:02d}{i:06d}-1f2a-4b5c-8d7e-9f0a1b2c3d4e" for i in range(count)]
    for i, user_id in enumerate(ids):
        tables.users[user_id] = datetime.datetime(2026, 1, day) + datetime.timedelta(seconds=i)
    return ids


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


# -- a backlog: worked off a slice at a time, deletes first -------------------------------------


def _gdb(user_id: str) -> tuple[str, str]:
    return ("globaldatabases", f"user-{user_id}")


async def test_a_pass_writes_for_one_slice_and_a_delete_goes_before_the_creates_left() -> None:
    tables, clock = Tables(), FakeClock()
    resources = Resources(clock, seconds_per_write=1.0)  # a slow API server: 1 s a write
    metrics = Metrics()
    sync = _sync(tables, resources, clock=clock, metrics=metrics)
    users = _users(tables, 20)
    first = await sync.run_once()
    assert first is not None
    # The slice is 5 s: 5 writes (2 users, and the database of the third), 35 left.
    assert first.created == 5
    assert first.left == sync.backlog == 35
    assert metrics.registry.get_sample_value("tenantdb_sim_sync_backlog", {"action": "create"}) == 35
    assert metrics.registry.get_sample_value("tenantdb_sim_sync_resources", {"kind": "GlobalDatabase"}) == 3
    # Nothing changed in Sim: the next poll goes on with the backlog, no snapshot.
    again = await sync.run_once()
    assert again is not None
    assert again.created == 5

    del tables.users[users[0]]
    resources.writes.clear()
    result = await sync.run_once()
    assert result is not None
    assert result.deleted == 2
    assert resources.writes[:2] == [
        ("delete", "globaldatabases", f"user-{users[0]}"),
        ("delete", "databasebudgets", f"user-{users[0]}"),
    ]
    assert result.created == 3  # the rest of the slice
    assert metrics.registry.get_sample_value("tenantdb_sim_sync_writes_total", {"action": "delete"}) == 2

    while sync.backlog:
        await sync.run_once()
    assert len(resources.objects) == 19 * 2  # a database and a budget per user left
    assert await sync.run_once() is None


async def test_a_user_registered_during_a_backlog_is_served_before_it() -> None:
    tables, clock = Tables(), FakeClock()
    resources = Resources(clock, seconds_per_write=1.0)
    sync = _sync(tables, resources, clock=clock)
    _users(tables, 20, day=1)
    await sync.run_once()
    assert sync.backlog
    (newcomer,) = _users(tables, 1, day=2)
    resources.writes.clear()
    result = await sync.run_once()
    assert result is not None
    assert not result.full
    assert resources.writes[:2] == [
        ("create", "globaldatabases", f"user-{newcomer}"),
        ("create", "databasebudgets", f"user-{newcomer}"),
    ]


async def test_a_pass_that_times_out_says_what_it_was_waiting_for(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(loop, "PASS_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(loop, "_FAILURE_PAUSE_SECONDS", 0.0)
    tables, resources = Tables(), Resources()
    tables.snapshot_hangs = True
    sync = _sync(tables, resources)
    with caplog.at_level(logging.WARNING, logger=loop.__name__):
        await sync.run_pass()
    assert [r.getMessage() for r in caplog.records] == [
        "Sim sync pass failed, retrying: no answer within 0.2 s while reading a snapshot of Sim's tables"
    ]


async def test_warnings_about_plans_no_tier_claims_take_a_second_of_a_pass_at_most() -> None:
    tables, clock = Tables(), FakeClock()
    warned: list[str] = []

    async def post_event(
        kind: str, name: str, reason: str, message: str, *, namespace: str = "", type_: str = "Normal"
    ) -> None:
        warned.append(name)
        clock.now += 0.3  # a slow API server

    settings = Settings(encryption_key="ab" * 32, sim_sync=True)
    sync = SimSync(
        settings=settings,
        tables=tables,
        resources=Resources(clock, seconds_per_write=0.05),
        post_event=post_event,
        clock=clock,
    )
    users = _users(tables, 10)
    tables.subscriptions = [("business_50000", user) for user in users]  # a plan nobody claims
    await sync.run_once()
    assert len(warned) == 4  # 1 s: the rest at the next reading of Sim, none told twice
    sync.forget()
    await sync.run_once()
    assert len(warned) == len(set(warned)) == 8


# -- the metadata rows a platform had before the operator ---------------------------------------


async def test_a_row_of_the_platforms_project_makes_a_resource_that_takes_it_over() -> None:
    tables, resources = Tables(), Resources()
    sync = _sync(tables, resources)
    adopted, fresh, odd = _users(tables, 3)
    tables.rows[adopted] = TenantRow("platform", "cool-forest-86753099", "app")
    tables.rows[odd] = TenantRow("platform", "cool-forest-12345678", "my-db")  # not an SQL name
    await sync.run_once()
    assert resources.objects[_gdb(adopted)]["spec"] == {
        "userId": adopted,
        "projectId": "cool-forest-86753099",
        "databaseName": "app",
    }
    assert resources.objects[_gdb(fresh)]["spec"] == {"userId": fresh}
    assert resources.objects[_gdb(odd)]["spec"] == {"userId": odd, "projectId": "cool-forest-12345678"}
    # A row written later (by the operator itself, or by hand) never becomes a patch.
    tables.rows[fresh] = TenantRow("platform", "other-project-1", "neondb")
    sync.forget()
    resources.writes.clear()
    await sync.run_once()
    assert resources.writes == []
    # A registration (the cheap path: the new rows alone) reads the new tenant's row too.
    (late,) = _users(tables, 1, day=2)
    tables.rows[late] = TenantRow("platform", "late-project-1", "neondb")
    result = await sync.run_once()
    assert result is not None
    assert not result.full
    assert resources.objects[_gdb(late)]["spec"]["projectId"] == "late-project-1"


async def test_a_users_own_database_gets_no_resource_and_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tables, resources = Tables(), Resources()
    metrics = Metrics()
    sync = _sync(tables, resources, metrics=metrics)
    owner, later = _users(tables, 2)
    tables.rows[owner] = TenantRow("user", "their-project-1", "neondb")
    with caplog.at_level(logging.INFO, logger=loop.__name__):
        await sync.run_once()
        sync.forget()
        await sync.run_once()
    assert _gdb(owner) not in resources.objects
    assert ("databasebudgets", f"user-{owner}") in resources.objects
    told = [r.getMessage() for r in caplog.records if "of their own" in r.getMessage()]
    assert len(told) == 1
    assert told[0].startswith("Sim sync: 1 users and 0 workspaces have a database of their own")
    labels = {"kind": "GlobalDatabase"}
    assert metrics.registry.get_sample_value("tenantdb_sim_sync_own_databases", labels) == 1

    # A resource of ours made before the user brought their own database: left alone, not deleted.
    tables.rows[later] = TenantRow("user", "their-project-2", "neondb")
    sync.forget()
    resources.writes.clear()
    await sync.run_once()
    assert _gdb(later) in resources.objects
    assert resources.writes == []


async def test_a_platform_row_with_a_bad_project_id_makes_nothing_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tables, resources = Tables(), Resources()
    sync = _sync(tables, resources)
    (user,) = _users(tables, 1)
    tables.rows[user] = TenantRow("platform", "Not A Project!", "neondb")
    with caplog.at_level(logging.WARNING, logger=loop.__name__):
        await sync.run_once()
        sync.forget()
        await sync.run_once()
    assert _gdb(user) not in resources.objects
    assert ("databasebudgets", f"user-{user}") in resources.objects
    assert len([r for r in caplog.records if "no project id the CRD accepts" in r.getMessage()]) == 1

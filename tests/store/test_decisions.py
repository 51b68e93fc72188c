"""The decision log: written, read back per tenant newest first, pruned past the retention."""

from __future__ import annotations

import datetime

import pytest

from tenantdb.config import Settings
from tenantdb.crypto import EncryptionKey
from tenantdb.handlers.decision_log import prune_decision_log
from tenantdb.handlers.runtime import Runtime
from tenantdb.metrics import Metrics
from tenantdb.store import DecisionRow, MetadataStore, decisions

from .conftest import KEY_HEX

T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)


def decision(tenant_id: str, action: str, *, at: datetime.datetime, scope: str = "user") -> DecisionRow:
    return DecisionRow(
        decided_at=at,
        scope=scope,
        tenant_id=tenant_id,
        action=action,
        decided_by="budget enforcement",
        reason=f"{action} for a test",
        spend_cents=612,
        limit_cents=500,
        details={"tier": "free"},
    )


async def test_a_decision_reads_back_as_written(store: MetadataStore) -> None:
    written = DecisionRow(
        decided_at=T0,
        scope="workspace",
        tenant_id="ws-1",
        action="delete",
        decided_by="finalizer",
        reason="the resource was deleted",
        resource="WorkspaceDatabase team/ws-1",
        project_id="proj-1",
        details={"waitedSeconds": 3},
    )
    await store.record_decision(written)

    assert await store.list_decisions([("workspace", "ws-1")]) == [written]


async def test_a_tenants_decisions_come_newest_first_and_only_theirs(store: MetadataStore) -> None:
    for minutes, action in enumerate(["suspend", "resume", "suspend"]):
        await store.record_decision(decision("alice", action, at=T0 + datetime.timedelta(minutes=minutes)))
    await store.record_decision(decision("bob", "suspend", at=T0))
    await store.record_decision(decision("alice", "delete", at=T0, scope="workspace"))

    alices = await store.list_decisions([("user", "alice")])
    assert [(d.action, d.decided_at.minute) for d in alices] == [
        ("suspend", 2),
        ("resume", 1),
        ("suspend", 0),
    ]
    assert [d.action for d in await store.list_decisions([("user", "alice")], limit=1)] == ["suspend"]
    both = await store.list_decisions([("user", "bob"), ("workspace", "alice")])
    assert sorted((d.scope, d.tenant_id) for d in both) == [("user", "bob"), ("workspace", "alice")]
    assert await store.list_decisions([]) == []


async def test_prune_deletes_only_what_is_older_than_the_retention(store: MetadataStore) -> None:
    for days in range(10):
        await store.record_decision(decision("alice", "suspend", at=T0 - datetime.timedelta(days=days)))

    assert await store.prune_decisions(before=T0 - datetime.timedelta(days=6, hours=12)) == 3
    left = await store.list_decisions([("user", "alice")], limit=100)
    assert len(left) == 7
    assert min(d.decided_at for d in left) == T0 - datetime.timedelta(days=6)
    assert await store.prune_decisions(before=T0 - datetime.timedelta(days=6, hours=12)) == 0


async def test_prune_goes_in_batches_through_more_rows_than_one_batch(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decisions, "PRUNE_BATCH", 2)
    for minutes in range(5):
        await store.record_decision(decision("alice", "resume", at=T0 + datetime.timedelta(minutes=minutes)))
    assert await store.prune_decisions(before=T0 + datetime.timedelta(hours=1)) == 5
    assert await store.list_decisions([("user", "alice")]) == []


async def test_the_operators_hourly_prune_keeps_the_configured_days_and_counts_what_went(
    store: MetadataStore,
) -> None:
    settings = Settings(encryption_key=KEY_HEX, decision_log_retention_days=30)
    runtime = Runtime(settings=settings, cipher=EncryptionKey(KEY_HEX), metrics=Metrics(), store=store)
    for days in (1, 29, 31, 400):
        await store.record_decision(decision("alice", "suspend", at=T0 - datetime.timedelta(days=days)))

    assert await prune_decision_log(runtime, now=T0) == 2
    kept = await store.list_decisions([("user", "alice")])
    assert sorted((T0 - d.decided_at).days for d in kept) == [1, 29]
    assert runtime.metrics.registry.get_sample_value("tenantdb_decision_log_pruned_total") == 2

"""user_db_budget rows: tier upserts, usage from the consumption sync, deletes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenantdb.store import BudgetRow, MetadataStore, StoreIntegrityError

from .conftest import Database


async def test_upsert_budget_creates_a_row_with_sims_defaults(store: MetadataStore) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    await store.upsert_budget(user_id="u1", tier="paid", custom_budget_cents=None)
    row = await store.get_budget(user_id="u1")
    assert row is not None
    assert (row.user_id, row.tier, row.custom_budget_cents, row.budget_exceeded, row.total_cost_cents) == (
        "u1",
        "paid",
        None,
        False,
        0,
    )
    assert row.last_sync is None
    # current_period_start defaults to now() in the session's zone, which the store keeps at UTC.
    assert before <= row.current_period_start.replace(microsecond=0) <= datetime.now(UTC)


async def test_upsert_budget_changes_the_tier_and_keeps_the_usage(store: MetadataStore) -> None:
    period = datetime(2025, 3, 1, tzinfo=UTC)
    synced = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)
    await store.upsert_budget(user_id="u1", tier="free", custom_budget_cents=None)
    await store.update_budget_usage(
        user_id="u1", total_cost_cents=620, budget_exceeded=True, period_start=period, synced_at=synced
    )
    await store.upsert_budget(user_id="u1", tier="enterprise", custom_budget_cents=100_000)
    assert await store.get_budget(user_id="u1") == BudgetRow(
        user_id="u1",
        tier="enterprise",
        custom_budget_cents=100_000,
        budget_exceeded=True,
        total_cost_cents=620,
        current_period_start=period,
        last_sync=synced,
    )


async def test_upsert_budget_that_changes_nothing_writes_nothing(
    store: MetadataStore, database: Database
) -> None:
    await store.upsert_budget(user_id="u1", tier="free", custom_budget_cents=None)
    async with await database.connect() as conn:
        await conn.execute("UPDATE user_db_budget SET updated_at = '2000-01-01'")
        await store.upsert_budget(user_id="u1", tier="free", custom_budget_cents=None)
        cursor = await conn.execute("SELECT updated_at FROM user_db_budget")
        assert await cursor.fetchone() == (datetime(2000, 1, 1),)


async def test_update_budget_usage_without_a_budget_row_is_an_integrity_error(store: MetadataStore) -> None:
    now = datetime.now(UTC)
    with pytest.raises(StoreIntegrityError, match="upsert the budget"):
        await store.update_budget_usage(
            user_id="nobody", total_cost_cents=1, budget_exceeded=False, period_start=now, synced_at=now
        )


async def test_delete_budget(store: MetadataStore) -> None:
    await store.upsert_budget(user_id="u1", tier="free", custom_budget_cents=None)
    assert await store.delete_budget(user_id="u1") is True
    assert await store.delete_budget(user_id="u1") is False
    assert await store.get_budget(user_id="u1") is None

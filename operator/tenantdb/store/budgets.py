"""``user_db_budget``: one spending budget per user, and the usage the consumption sync found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tenantdb.store.errors import StoreIntegrityError
from tenantdb.store.pool import Connection
from tenantdb.store.timestamps import from_db, to_db

__all__ = ["BudgetRow", "delete", "get", "list_all", "update_usage", "upsert"]


@dataclass(frozen=True, slots=True)
class BudgetRow:
    user_id: str
    tier: str
    custom_budget_cents: int | None  # None: the tier's limit applies
    budget_exceeded: bool
    total_cost_cents: int
    current_period_start: datetime
    last_sync: datetime | None


async def upsert(conn: Connection, *, user_id: str, tier: str, custom_budget_cents: int | None) -> None:
    # Usage columns keep their defaults on insert and their values on update: they belong to
    # update_usage. The WHERE makes a resync that changes nothing write nothing.
    await conn.execute(
        """
        INSERT INTO user_db_budget AS b
            (id, user_id, budget_tier, custom_budget_cents, created_at, updated_at)
        VALUES (%s, %s, %s, %s, now(), now())
        ON CONFLICT (user_id) DO UPDATE SET
            budget_tier = EXCLUDED.budget_tier,
            custom_budget_cents = EXCLUDED.custom_budget_cents,
            updated_at = now()
        WHERE (b.budget_tier, b.custom_budget_cents)
              IS DISTINCT FROM (EXCLUDED.budget_tier, EXCLUDED.custom_budget_cents)
        """,
        (str(uuid.uuid4()), user_id, tier, custom_budget_cents),
    )


async def update_usage(
    conn: Connection,
    *,
    user_id: str,
    total_cost_cents: int,
    budget_exceeded: bool,
    period_start: datetime,
    synced_at: datetime,
) -> None:
    cursor = await conn.execute(
        """
        UPDATE user_db_budget
        SET total_cost_cents = %s, budget_exceeded = %s, current_period_start = %s, last_sync = %s,
            updated_at = now()
        WHERE user_id = %s
        """,
        (total_cost_cents, budget_exceeded, to_db(period_start), to_db(synced_at), user_id),
    )
    if cursor.rowcount == 0:
        # Inventing a row here would guess its tier; the budget's reconcile creates it.
        raise StoreIntegrityError("no budget row for this user: upsert the budget before its usage")


async def delete(conn: Connection, *, user_id: str) -> bool:
    cursor = await conn.execute("DELETE FROM user_db_budget WHERE user_id = %s", (user_id,))
    return cursor.rowcount > 0


_SELECT = """
    SELECT user_id, budget_tier, custom_budget_cents, budget_exceeded, total_cost_cents,
           current_period_start, last_sync
    FROM user_db_budget
"""


async def get(conn: Connection, *, user_id: str) -> BudgetRow | None:
    cursor = await conn.execute(_SELECT + " WHERE user_id = %s", (user_id,))
    row = await cursor.fetchone()
    return None if row is None else _row(row)


async def list_all(conn: Connection) -> list[BudgetRow]:
    """Every budget row: what the last process decided about each user (read at start-up)."""
    cursor = await conn.execute(_SELECT + " ORDER BY user_id")
    return [_row(row) for row in await cursor.fetchall()]


def _row(row: tuple[object, ...]) -> BudgetRow:
    owner, tier, custom, exceeded, total, period_start, last_sync = row
    start = from_db(period_start)  # type: ignore[arg-type]
    assert start is not None  # NOT NULL column
    return BudgetRow(
        user_id=str(owner),
        tier=str(tier),
        custom_budget_cents=custom,  # type: ignore[arg-type]
        budget_exceeded=bool(exceeded),
        total_cost_cents=int(total),  # type: ignore[call-overload]
        current_period_start=start,
        last_sync=from_db(last_sync),  # type: ignore[arg-type]
    )

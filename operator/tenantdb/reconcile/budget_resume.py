"""What a budget's resume may take as already done, from one read of the metadata DB.

A restart resumes every DatabaseBudget at once. Each one's reconcile holds its user's claim and
upserts its row: two statements per budget, 20,000 at 10,000 budgets, all asking the pool (of
10 connections) in the same second, and a new signup's statements waiting behind them. The rows
and claims of every budget are read once instead, when the process starts; a resume whose
status is current and whose row and claim stand as its spec says writes nothing.

The snapshot is a cache with a short life: it answers resumes, which come in the minutes after
a start, and then it is dropped (a later question gets "not known", and the reconcile asks the
metadata DB itself). Losing it changes nothing but the number of statements.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

__all__ = ["BudgetResumeSnapshot"]

DEFAULT_TTL_SECONDS = 600.0  # resumes of 10,000 budgets end within a few minutes of the start


class BudgetRowLike(Protocol):
    @property
    def user_id(self) -> str: ...
    @property
    def tier(self) -> str: ...
    @property
    def custom_budget_cents(self) -> int | None: ...


class SnapshotStore(Protocol):
    async def list_budgets(self) -> Sequence[BudgetRowLike]: ...
    async def list_tenant_holders(self, *, kind: str) -> Mapping[str, str]: ...


class BudgetResumeSnapshot:
    def __init__(
        self, *, ttl_seconds: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._rows: dict[str, tuple[str, int | None]] = {}
        self._holders: Mapping[str, str] = {}
        self._loaded_at: float | None = None

    async def load(self, store: SnapshotStore, *, kind: str) -> None:
        """Read every budget row and every claim of ``kind`` (a store error propagates: the
        caller decides whether starting without the snapshot is fine)."""
        rows = await store.list_budgets()
        holders = await store.list_tenant_holders(kind=kind)
        self._rows = {row.user_id: (row.tier, row.custom_budget_cents) for row in rows}
        self._holders = holders
        self._loaded_at = self._clock()

    def forget(self) -> None:
        self._rows, self._holders, self._loaded_at = {}, {}, None

    def recorded(self, *, user_id: str, holder_uid: str, tier: str, custom_budget_cents: int | None) -> bool:
        """Whether the metadata DB, as read at the start, has this user's claim held by
        ``holder_uid`` and its row at this tier and limit. False once the snapshot expired."""
        if self._loaded_at is None:
            return False
        if self._clock() - self._loaded_at > self._ttl:
            self.forget()
            return False
        return self._holders.get(user_id) == holder_uid and self._rows.get(user_id) == (
            tier,
            custom_budget_cents,
        )

"""Billing periods: half-open intervals ``[start, end)`` of UTC time.

By default a period is a calendar month in UTC, which is also how Neon's ``monthly``
consumption granularity cuts time. An anchor day other than 1 starts every period on that day
of the month instead (say the 15th: 15 January 00:00 UTC up to 15 February 00:00 UTC). The
anchor is limited to 1..28 so that every month has the day and no period is ever skipped or
doubled; settings would carry it as ``TENANTDB_BILLING_PERIOD_ANCHOR_DAY``.

Timestamps must be timezone-aware: a naive datetime is refused rather than guessed to be UTC,
because guessing wrong moves spend into the wrong month.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

__all__ = ["MAX_ANCHOR_DAY", "BillingPeriod", "billing_period"]

MAX_ANCHOR_DAY = 28


@dataclasses.dataclass(frozen=True)
class BillingPeriod:
    """``[start, end)`` in UTC; ``start`` is inclusive and ``end`` exclusive."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a billing period needs timezone-aware bounds")
        if self.start >= self.end:
            raise ValueError(f"a billing period must end after it starts: {self.start} >= {self.end}")

    def __contains__(self, at: object) -> bool:
        return isinstance(at, datetime) and self.start <= _utc(at) < self.end

    @property
    def is_calendar_month(self) -> bool:
        """Whether the period starts at the first instant of a UTC month."""
        return self.start == datetime(self.start.year, self.start.month, 1, tzinfo=UTC)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise ValueError(f"timestamp must be timezone-aware, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def billing_period(at: datetime, *, anchor_day: int = 1) -> BillingPeriod:
    """The billing period that contains ``at``.

    Raises ``ValueError`` for a naive ``at`` or an anchor day outside 1..28.
    """
    if not 1 <= anchor_day <= MAX_ANCHOR_DAY:
        raise ValueError(f"anchor_day must be within 1..{MAX_ANCHOR_DAY}, got {anchor_day}")
    at = _utc(at)
    # Before the anchor instant of this month, the period began in the previous month.
    months_back = 0 if at >= datetime(at.year, at.month, anchor_day, tzinfo=UTC) else -1
    start_year, start_month = _add_months(at.year, at.month, months_back)
    end_year, end_month = _add_months(start_year, start_month, 1)
    return BillingPeriod(
        start=datetime(start_year, start_month, anchor_day, tzinfo=UTC),
        end=datetime(end_year, end_month, anchor_day, tzinfo=UTC),
    )

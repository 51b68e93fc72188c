"""Time as the emulator tells it: UTC, Neon's timestamp format, calendar-month billing periods."""

from __future__ import annotations

import datetime

__all__ = ["billing_period", "month_start", "next_month", "timestamp", "utcnow"]


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with whole seconds, as Neon writes them (``2022-11-23T17:42:25Z``)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def month_start(moment: datetime.datetime) -> datetime.datetime:
    return moment.astimezone(datetime.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(moment: datetime.datetime) -> datetime.datetime:
    start = month_start(moment)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def billing_period(now: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """The calendar month (UTC) that holds ``now``: its start and end."""
    return month_start(now), next_month(now)

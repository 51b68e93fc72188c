"""Datetimes in and out of Sim's ``timestamp`` (without time zone) columns.

Sim writes UTC into them, and the store's sessions run in UTC, so the convention is: naive
values in the DB are UTC. Going in, aware datetimes are converted to UTC and naive ones are
taken to be UTC already; coming out, every value is aware (UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["from_db", "to_db"]


def to_db(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def from_db(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)

"""Billing periods: calendar months in UTC by default, [start, end), optional anchor day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tenantdb.billing import BillingPeriod, billing_period


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_mid_month_is_in_that_calendar_month() -> None:
    assert billing_period(utc(2026, 3, 12, 15, 30)) == BillingPeriod(utc(2026, 3, 1), utc(2026, 4, 1))


def test_the_first_instant_of_a_month_starts_the_new_period() -> None:
    assert billing_period(utc(2026, 4, 1)).start == utc(2026, 4, 1)


def test_the_last_instant_of_a_month_is_still_in_it() -> None:
    last = utc(2026, 4, 1) - timedelta(microseconds=1)
    assert billing_period(last) == BillingPeriod(utc(2026, 3, 1), utc(2026, 4, 1))


def test_the_end_is_exclusive() -> None:
    period = billing_period(utc(2026, 3, 31, 23, 59))
    assert period.end not in period
    assert period.start in period
    assert billing_period(period.end).start == period.end


def test_december_rolls_over_into_january_of_the_next_year() -> None:
    assert billing_period(utc(2025, 12, 31, 23, 59, 59)) == BillingPeriod(utc(2025, 12, 1), utc(2026, 1, 1))
    assert billing_period(utc(2026, 1, 1)) == BillingPeriod(utc(2026, 1, 1), utc(2026, 2, 1))


def test_february_of_a_leap_year_has_29_days() -> None:
    period = billing_period(utc(2024, 2, 29, 12))
    assert period == BillingPeriod(utc(2024, 2, 1), utc(2024, 3, 1))
    assert period.end - period.start == timedelta(days=29)


def test_february_of_a_common_year_has_28_days() -> None:
    period = billing_period(utc(2023, 2, 28, 23))
    assert period.end - period.start == timedelta(days=28)
    assert billing_period(utc(2023, 3, 1)).start == utc(2023, 3, 1)


def test_other_timezones_are_converted_to_utc() -> None:
    # 00:30 on 1 March in UTC+1 is still 29 February in UTC.
    at = datetime(2024, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert billing_period(at) == BillingPeriod(utc(2024, 2, 1), utc(2024, 3, 1))


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        billing_period(datetime(2026, 3, 12))


def test_contains_refuses_naive_timestamps_too() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _ = datetime(2026, 3, 12) in billing_period(utc(2026, 3, 12))


def test_calendar_months_are_recognised() -> None:
    assert billing_period(utc(2026, 3, 12)).is_calendar_month
    assert not billing_period(utc(2026, 3, 12), anchor_day=15).is_calendar_month


# --- anchor day ------------------------------------------------------------------------------------


def test_an_anchor_day_starts_periods_on_that_day() -> None:
    assert billing_period(utc(2026, 3, 20), anchor_day=15) == BillingPeriod(
        utc(2026, 3, 15), utc(2026, 4, 15)
    )


def test_before_the_anchor_day_the_period_began_last_month() -> None:
    assert billing_period(utc(2026, 3, 14, 23), anchor_day=15) == BillingPeriod(
        utc(2026, 2, 15), utc(2026, 3, 15)
    )


def test_an_anchored_period_crosses_the_year() -> None:
    assert billing_period(utc(2026, 1, 10), anchor_day=15) == BillingPeriod(
        utc(2025, 12, 15), utc(2026, 1, 15)
    )
    assert billing_period(utc(2025, 12, 20), anchor_day=15) == BillingPeriod(
        utc(2025, 12, 15), utc(2026, 1, 15)
    )


def test_anchor_day_28_exists_in_every_february() -> None:
    assert billing_period(utc(2023, 3, 1), anchor_day=28) == BillingPeriod(utc(2023, 2, 28), utc(2023, 3, 28))


@pytest.mark.parametrize("day", [0, 29, 31, -1])
def test_an_anchor_day_outside_1_to_28_is_refused(day: int) -> None:
    with pytest.raises(ValueError, match="anchor_day"):
        billing_period(utc(2026, 3, 12), anchor_day=day)


@pytest.mark.parametrize("anchor_day", [1, 15, 28])
def test_periods_tile_time_without_gaps_or_overlaps(anchor_day: int) -> None:
    period = billing_period(utc(2023, 11, 20), anchor_day=anchor_day)
    for _ in range(30):  # across two years, a leap February included
        following = billing_period(period.end, anchor_day=anchor_day)
        assert following.start == period.end
        assert billing_period(period.end - timedelta(microseconds=1), anchor_day=anchor_day) == period
        period = following


def test_a_period_must_be_aware_and_non_empty() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        BillingPeriod(datetime(2026, 3, 1), utc(2026, 4, 1))
    with pytest.raises(ValueError, match="end after it starts"):
        BillingPeriod(utc(2026, 4, 1), utc(2026, 4, 1))

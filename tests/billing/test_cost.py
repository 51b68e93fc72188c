"""Cost of one project's consumption: Neon's units, the prices, and the one rounding rule
(exact cost, rounded up once to whole cents)."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import pytest

from tenantdb.billing import BILLED_METRICS, Prices, cost_cents, exact_cost_usd, to_cents

GB = 10**9
HOURS = 744  # Neon's fixed billing month
GB_MONTH = GB * HOURS  # byte-hours in one GB-month


def test_ten_cu_hours_at_launch_price_cost_106_cents(prices: Prices) -> None:
    assert cost_cents({"compute_unit_seconds": 10 * 3600}, prices) == 106


def test_two_gb_for_a_whole_31_day_month_cost_70_cents(prices: Prices) -> None:
    # Neon's own example: 2 GB x 24 h x 31 days = 1,488,000,000,000 byte-hours = 2 GB-months.
    assert cost_cents({"root_branch_bytes_month": 2 * GB * 24 * 31}, prices) == 70


def test_storage_metrics_are_byte_hours_over_744_hours_and_decimal_gigabytes(prices: Prices) -> None:
    # Neon's example: 2,500,000,000,000 / 744 / 10^9 = 3.36 GB-months; x $0.35 = $1.176...
    assert exact_cost_usd({"root_branch_bytes_month": 2_500_000_000_000}, prices) == Fraction(
        2_500_000_000_000, GB_MONTH
    ) * Fraction("0.35")
    assert cost_cents({"root_branch_bytes_month": 2_500_000_000_000}, prices) == 118


def test_a_gigabyte_is_ten_to_the_ninth_bytes_not_two_to_the_thirtieth(prices: Prices) -> None:
    # One GiB held for the whole month is 1.073741824 GB-months: $0.3758..., 38 cents (not 35).
    assert cost_cents({"root_branch_bytes_month": 2**30 * HOURS}, prices) == 38


def test_root_and_child_branches_share_the_storage_price(prices: Prices) -> None:
    assert (
        cost_cents({"root_branch_bytes_month": GB_MONTH, "child_branch_bytes_month": GB_MONTH}, prices) == 70
    )


def test_restore_history_and_snapshots_have_their_own_prices(prices: Prices) -> None:
    assert cost_cents({"instant_restore_bytes_month": GB_MONTH}, prices) == 20
    assert cost_cents({"snapshot_storage_bytes_month": GB_MONTH}, prices) == 9


def test_all_billed_metrics_add_up(prices: Prices) -> None:
    metrics = {
        "compute_unit_seconds": 36_000,  # 106
        "root_branch_bytes_month": 2 * GB_MONTH,  # 70
        "child_branch_bytes_month": GB_MONTH,  # 35
        "instant_restore_bytes_month": GB_MONTH,  # 20
        "snapshot_storage_bytes_month": GB_MONTH,  # 9
    }
    assert cost_cents(metrics, prices) == 240
    assert set(metrics) == set(BILLED_METRICS)


def test_unbilled_metrics_are_ignored(prices: Prices) -> None:
    metrics = {
        "public_network_transfer_bytes": 10**12,
        "private_network_transfer_bytes": 10**12,
        "extra_branches_month": 744,
    }
    assert cost_cents(metrics, prices) == 0


def test_no_consumption_costs_nothing(prices: Prices) -> None:
    assert cost_cents({}, prices) == 0
    assert cost_cents(dict.fromkeys(BILLED_METRICS, 0), prices) == 0


# --- the rounding rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usd", "cents"),
    [
        (Fraction(0), 0),
        (Fraction(1, 10**9), 1),  # a billionth of a dollar is still a cent
        (Fraction("0.01"), 1),  # exactly one cent stays one cent
        (Fraction("0.0100001"), 2),
        (Fraction("1.005"), 101),  # half a cent goes up, like everything else
        (Fraction("1.0049"), 101),  # not half-up: up
        (Fraction(2, 3), 67),
    ],
)
def test_to_cents_rounds_up_to_the_next_whole_cent(usd: Fraction, cents: int) -> None:
    assert to_cents(usd) == cents


def test_any_consumption_at_all_costs_at_least_a_cent(prices: Prices) -> None:
    assert cost_cents({"compute_unit_seconds": 1}, prices) == 1
    assert cost_cents({"root_branch_bytes_month": 1}, prices) == 1


def test_a_fraction_of_a_cent_is_rounded_up_not_to_nearest(prices: Prices) -> None:
    # Neon's example on Scale: 500,000 CU-seconds x $0.222 = $30.8333...; Neon shows $30.83.
    scale = Prices(compute_cu_hour_usd=Decimal("0.222"), storage_gb_month_usd=Decimal("0.35"))
    assert exact_cost_usd({"compute_unit_seconds": 500_000}, scale) == Fraction(500_000, 3600) * Fraction(
        "0.222"
    )
    assert cost_cents({"compute_unit_seconds": 500_000}, scale) == 3084


def test_an_exact_number_of_cents_is_not_rounded_up() -> None:
    # With binary floats, 3600 CU-seconds at $0.10 would be 10.000000000000002 cents, then 11.
    dime = Prices(compute_cu_hour_usd=Decimal("0.10"), storage_gb_month_usd=Decimal("0.35"))
    assert cost_cents({"compute_unit_seconds": 3600}, dime) == 10
    assert cost_cents({"root_branch_bytes_month": GB_MONTH * 3}, dime) == 105


def test_the_project_is_rounded_once_not_each_metric() -> None:
    # 40 CU-seconds at $0.36/CU-hour = 0.4 cents; 4e9 byte-hours at $0.744/GB-month = 0.4 cents.
    # Rounded separately that would be 2 cents; the project's exact 0.8 cents rounds to 1.
    prices = Prices(compute_cu_hour_usd=Decimal("0.36"), storage_gb_month_usd=Decimal("0.744"))
    assert exact_cost_usd({"compute_unit_seconds": 40}, prices) * 100 == Fraction(2, 5)
    assert exact_cost_usd({"root_branch_bytes_month": 4 * GB}, prices) * 100 == Fraction(2, 5)
    assert cost_cents({"compute_unit_seconds": 40, "root_branch_bytes_month": 4 * GB}, prices) == 1


def test_huge_values_stay_exact(prices: Prices) -> None:
    # A million CU-years, way past float precision: still exact cents.
    cu_seconds = 10**6 * 365 * 24 * 3600
    assert cost_cents({"compute_unit_seconds": cu_seconds}, prices) == 10**6 * 365 * 24 * 106 // 10


def test_rounding_is_up_by_less_than_a_cent_and_monotonic(prices: Prices) -> None:
    # A seeded property check: for random consumption, cents - exact < 1, and more
    # consumption never costs less.
    rng = random.Random(20260312)
    for _ in range(500):
        metrics = {name: rng.randrange(0, 10**13) for name in BILLED_METRICS}
        exact_cents = exact_cost_usd(metrics, prices) * 100
        cents = cost_cents(metrics, prices)
        assert 0 <= cents - exact_cents < 1
        more = dict(metrics)
        more[rng.choice(BILLED_METRICS)] += rng.randrange(1, 10**6)
        assert cost_cents(more, prices) >= cents


# --- malformed metrics ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 1.5, "100", True, None])
def test_a_billed_metric_that_is_not_a_non_negative_integer_is_refused(prices: Prices, bad: object) -> None:
    with pytest.raises(ValueError, match="compute_unit_seconds"):
        cost_cents({"compute_unit_seconds": bad}, prices)  # type: ignore[dict-item]

"""Prices: exact decimals from settings, never floats, never negative."""

from __future__ import annotations

from decimal import Decimal

import pytest

import tenantdb.billing
from tenantdb.billing import Prices
from tenantdb.config import Settings

KEY = "0123456789abcdef" * 4


def test_prices_come_from_settings() -> None:
    settings = Settings(
        encryption_key=KEY,
        price_compute_cu_hour_usd=Decimal("0.222"),
        price_storage_gb_month_usd=Decimal("0.4"),
    )
    prices = Prices.from_settings(settings)
    assert prices.compute_cu_hour_usd == Decimal("0.222")
    assert prices.storage_gb_month_usd == Decimal("0.4")


def test_restore_and_snapshot_storage_default_to_neons_published_rates() -> None:
    prices = Prices(compute_cu_hour_usd=Decimal("0.106"), storage_gb_month_usd=Decimal("0.35"))
    assert prices.instant_restore_gb_month_usd == Decimal("0.20")
    assert prices.snapshot_gb_month_usd == Decimal("0.09")


def test_a_float_price_is_refused() -> None:
    with pytest.raises(TypeError, match="compute_cu_hour_usd must be a Decimal"):
        Prices(compute_cu_hour_usd=0.106, storage_gb_month_usd=Decimal("0.35"))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [Decimal("-0.01"), Decimal("NaN"), Decimal("Infinity")])
def test_a_negative_or_non_finite_price_is_refused(bad: Decimal) -> None:
    with pytest.raises(ValueError, match="storage_gb_month_usd"):
        Prices(compute_cu_hour_usd=Decimal("0.106"), storage_gb_month_usd=bad)


def test_free_prices_are_allowed() -> None:
    assert Prices(compute_cu_hour_usd=Decimal(0), storage_gb_month_usd=Decimal(0)).compute_cu_hour_usd == 0


def test_the_package_exports_exactly_what_it_names() -> None:
    assert sorted(tenantdb.billing.__all__) == sorted(set(tenantdb.billing.__all__))
    for name in tenantdb.billing.__all__:
        assert hasattr(tenantdb.billing, name), name

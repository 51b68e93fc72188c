"""Neon's unit prices in US dollars, as the operator is configured to charge them.

Prices are ``Decimal`` so that a configured "0.106" stays exactly 0.106 (a binary float would
not), and they are passed around as one small value instead of reading settings everywhere.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from tenantdb.config import Settings

__all__ = ["DEFAULT_INSTANT_RESTORE_GB_MONTH_USD", "DEFAULT_SNAPSHOT_GB_MONTH_USD", "Prices"]

# Neon's published rates for the two storage classes that are not priced like branch storage
# ("Usage and cost calculations", Launch and Scale alike). Settings has no field for them yet,
# so these are the values until TENANTDB_PRICE_INSTANT_RESTORE_GB_MONTH_USD and
# TENANTDB_PRICE_SNAPSHOT_GB_MONTH_USD exist.
DEFAULT_INSTANT_RESTORE_GB_MONTH_USD = Decimal("0.20")
DEFAULT_SNAPSHOT_GB_MONTH_USD = Decimal("0.09")


@dataclasses.dataclass(frozen=True)
class Prices:
    """Unit prices in US dollars.

    ``compute_cu_hour_usd``: per CU-hour (one compute unit running one hour).
    ``storage_gb_month_usd``: per GB-month of root and child branch storage.
    ``instant_restore_gb_month_usd``: per GB-month of point-in-time-restore history.
    ``snapshot_gb_month_usd``: per GB-month of branch snapshots.
    """

    compute_cu_hour_usd: Decimal
    storage_gb_month_usd: Decimal
    instant_restore_gb_month_usd: Decimal = DEFAULT_INSTANT_RESTORE_GB_MONTH_USD
    snapshot_gb_month_usd: Decimal = DEFAULT_SNAPSHOT_GB_MONTH_USD

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            # A float here would silently bring binary rounding back into the money maths.
            if not isinstance(value, Decimal):
                raise TypeError(f"{field.name} must be a Decimal, not {type(value).__name__}")
            if not value.is_finite() or value < 0:
                raise ValueError(f"{field.name} must be a finite price >= 0, got {value}")

    @classmethod
    def from_settings(cls, settings: Settings) -> Prices:
        return cls(
            compute_cu_hour_usd=settings.price_compute_cu_hour_usd,
            storage_gb_month_usd=settings.price_storage_gb_month_usd,
            instant_restore_gb_month_usd=settings.price_instant_restore_gb_month_usd,
            snapshot_gb_month_usd=settings.price_snapshot_gb_month_usd,
        )

"""The cost of one Neon project in one billing period, in whole cents.

Inputs are the totals of Neon's v2 consumption metrics for the period
(``GET /consumption_history/v2/projects``). Units, from Neon's "Usage and cost calculations":

- ``compute_unit_seconds`` is CU-seconds: CU-hours = value / 3600.
- The ``*_bytes_month`` metrics are, despite their names, **byte-hours** (bytes held x hours
  held). Neon turns them into GB-months with a fixed month of 744 hours (31 x 24, whatever the
  calendar month) and **decimal gigabytes** (1 GB = 10^9 bytes, not 2^30):
  GB-months = value / 744 / 10^9.

What is billed, and at which price (``Prices``):

- ``compute_unit_seconds`` at the compute price;
- ``root_branch_bytes_month`` + ``child_branch_bytes_month`` at the storage price;
- ``instant_restore_bytes_month`` (point-in-time-restore history) and
  ``snapshot_storage_bytes_month`` at their own prices, because Neon invoices them too and
  every project keeps restore history by default.

Not billed here, on purpose: ``public_network_transfer_bytes`` (Neon's 100 GB allowance is
organisation-wide, so a share cannot be attributed to one user), ``private_network_transfer_bytes``
(private networking is not something tenant projects use) and ``extra_branches_month`` (charged
only above a per-project branch allowance; tenant projects have one branch). Metrics that are
not billed are ignored, so a source may return more than ``BILLED_METRICS``.

Rounding — the one rule: a project's period cost is computed exactly (the metrics are integers,
the prices decimals and the unit conversions divide by 3600 and 744 x 10^9, so the exact value
is a fraction, which ``fractions.Fraction`` holds without error) and then rounded **up** once to
whole cents. Up, because this number guards a spending limit: it never shows less than was
spent, and it is off by less than one cent per project. A user's total is the sum of their
projects' rounded costs, so the per-database costs in a status add up to its total.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

from tenantdb.billing.prices import Prices

__all__ = [
    "BILLED_METRICS",
    "CHILD_BRANCH_BYTES_MONTH",
    "COMPUTE_UNIT_SECONDS",
    "INSTANT_RESTORE_BYTES_MONTH",
    "ROOT_BRANCH_BYTES_MONTH",
    "SNAPSHOT_STORAGE_BYTES_MONTH",
    "cost_cents",
    "exact_cost_usd",
    "to_cents",
]

COMPUTE_UNIT_SECONDS = "compute_unit_seconds"
ROOT_BRANCH_BYTES_MONTH = "root_branch_bytes_month"
CHILD_BRANCH_BYTES_MONTH = "child_branch_bytes_month"
INSTANT_RESTORE_BYTES_MONTH = "instant_restore_bytes_month"
SNAPSHOT_STORAGE_BYTES_MONTH = "snapshot_storage_bytes_month"

# The metrics to ask Neon for: exactly those that carry a price below.
BILLED_METRICS: tuple[str, ...] = (
    COMPUTE_UNIT_SECONDS,
    ROOT_BRANCH_BYTES_MONTH,
    CHILD_BRANCH_BYTES_MONTH,
    INSTANT_RESTORE_BYTES_MONTH,
    SNAPSHOT_STORAGE_BYTES_MONTH,
)

_SECONDS_PER_HOUR = 3600
_HOURS_PER_BILLING_MONTH = 744  # Neon's fixed billing month: 31 days x 24 hours
_BYTES_PER_GB = 10**9  # Neon bills decimal gigabytes
_CENTS_PER_DOLLAR = 100


def _metric(metrics: Mapping[str, int], name: str) -> int:
    # An absent metric is no consumption of that kind (a project without snapshots, say).
    value = metrics.get(name, 0)
    # bool is an int in Python; True CU-seconds would be a bug upstream, not a quantity.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"metric {name} must be an integer, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"metric {name} must not be negative, got {value}")
    return value


def _per_gb_month(byte_hours: int, price: Decimal) -> Fraction:
    return Fraction(byte_hours, _HOURS_PER_BILLING_MONTH * _BYTES_PER_GB) * Fraction(price)


def exact_cost_usd(metrics: Mapping[str, int], prices: Prices) -> Fraction:
    """The exact cost in US dollars of one project's consumption totals, before any rounding.

    Raises ``ValueError`` when a billed metric is not a non-negative integer.
    """
    compute = Fraction(_metric(metrics, COMPUTE_UNIT_SECONDS), _SECONDS_PER_HOUR) * Fraction(
        prices.compute_cu_hour_usd
    )
    branch_byte_hours = _metric(metrics, ROOT_BRANCH_BYTES_MONTH) + _metric(metrics, CHILD_BRANCH_BYTES_MONTH)
    return (
        compute
        + _per_gb_month(branch_byte_hours, prices.storage_gb_month_usd)
        + _per_gb_month(_metric(metrics, INSTANT_RESTORE_BYTES_MONTH), prices.instant_restore_gb_month_usd)
        + _per_gb_month(_metric(metrics, SNAPSHOT_STORAGE_BYTES_MONTH), prices.snapshot_gb_month_usd)
    )


def to_cents(exact_usd: Fraction) -> int:
    """The one rounding rule: an exact dollar amount rounded up to whole cents."""
    return math.ceil(exact_usd * _CENTS_PER_DOLLAR)


def cost_cents(metrics: Mapping[str, int], prices: Prices) -> int:
    """One project's cost for a period in whole cents: the exact cost rounded up once.

    Raises ``ValueError`` when a billed metric is not a non-negative integer.
    """
    return to_cents(exact_cost_usd(metrics, prices))

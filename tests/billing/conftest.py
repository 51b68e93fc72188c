"""Shared values for the billing tests: the operator's default prices and tier policy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tenantdb.billing import Prices, TierPolicy
from tenantdb.config import Tier

# Neon's published Launch prices, which are also the operator's defaults.
LAUNCH = Prices(compute_cu_hour_usd=Decimal("0.106"), storage_gb_month_usd=Decimal("0.35"))


@pytest.fixture
def prices() -> Prices:
    return LAUNCH


@pytest.fixture
def policy() -> TierPolicy:
    """The operator's default tiers: free $5, paid $50, enterprise unlimited; default free."""
    return TierPolicy.of_limits(Tier.FREE, {Tier.FREE: 500, Tier.PAID: 5000, Tier.ENTERPRISE: None})

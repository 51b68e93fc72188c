"""A tier's own compute quota lowers the budget's hard stop, never raises it."""

from __future__ import annotations

from tenantdb.billing.quotas import UNLIMITED, capped


def test_a_tier_cap_lowers_a_quota_and_replaces_unlimited() -> None:
    assert capped({"p1": 5000, "p2": 100, "p3": UNLIMITED}, 1000) == {"p1": 1000, "p2": 100, "p3": 1000}


def test_no_cap_leaves_the_quotas_as_they_are() -> None:
    assert capped({"p1": 5000, "p2": UNLIMITED}, None) == {"p1": 5000, "p2": UNLIMITED}
    assert capped({"p1": 5000}, 0) == {"p1": 5000}  # 0: Neon's "no quota"

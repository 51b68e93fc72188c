"""Billing: prices, the cost of a project's consumption, billing periods, tier limits and the
per-user budget decision. Pure logic: no I/O, no Kubernetes, no Neon client.
"""

from tenantdb.billing.cost import BILLED_METRICS, cost_cents, exact_cost_usd, to_cents
from tenantdb.billing.decisions import BudgetDecision, DatabaseSpend, decide_budget
from tenantdb.billing.period import BillingPeriod, billing_period
from tenantdb.billing.prices import Prices
from tenantdb.billing.tiers import (
    Budget,
    TierDefinition,
    TierPolicy,
    UnknownTierError,
    is_exceeded,
    tier_for_sim_plan,
)

__all__ = [
    "BILLED_METRICS",
    "BillingPeriod",
    "Budget",
    "BudgetDecision",
    "DatabaseSpend",
    "Prices",
    "TierDefinition",
    "TierPolicy",
    "UnknownTierError",
    "billing_period",
    "cost_cents",
    "decide_budget",
    "exact_cost_usd",
    "is_exceeded",
    "tier_for_sim_plan",
    "to_cents",
]

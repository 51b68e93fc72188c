"""The package's public interface is exactly what the reconcilers are written against."""

from __future__ import annotations

import tenantdb.neon


def test_the_package_exports_exactly_its_interface() -> None:
    assert sorted(tenantdb.neon.__all__) == [
        "Branch",
        "ConnectionDetails",
        "ConsumptionTimeframe",
        "CreatedProject",
        "CredentialCheck",
        "Database",
        "Endpoint",
        "NeonAPIError",
        "NeonAuthError",
        "NeonBadRequestError",
        "NeonClient",
        "NeonClientError",
        "NeonError",
        "NeonLimitError",
        "NeonNotFoundError",
        "NeonOperationFailedError",
        "NeonTransientError",
        "Operation",
        "PasswordReset",
        "Priority",
        "ProjectConsumption",
        "ProjectSummary",
        "Rate",
        "RateLimiter",
        "Role",
        "Timing",
        "Transport",
        "background_calls",
        "current_priority",
    ]
    for name in tenantdb.neon.__all__:
        assert getattr(tenantdb.neon, name) is not None

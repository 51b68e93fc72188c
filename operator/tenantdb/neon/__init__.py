"""The async Neon API v2 client: the only module family that speaks HTTP to Neon.

    client = NeonClient.from_settings(settings, metrics=metrics)
    async with client:
        await client.validate()
        created = await client.create_project(name=..., ...)

One ``RateLimiter`` per process paces every call; retries, metrics and the error tree
(``errors``) are shared by all methods. Background loops wrap their work in
``background_calls()``: those calls yield to the ones a user waits for (``priority``).
"""

from typing import TypeAlias

import httpx

from tenantdb.neon.client import NeonClient
from tenantdb.neon.errors import (
    NeonAPIError,
    NeonAuthError,
    NeonBadRequestError,
    NeonClientError,
    NeonError,
    NeonLimitError,
    NeonNotFoundError,
    NeonOperationFailedError,
    NeonTransientError,
)
from tenantdb.neon.limiter import Rate, RateLimiter
from tenantdb.neon.models import (
    Branch,
    ConnectionDetails,
    ConsumptionTimeframe,
    CreatedProject,
    CredentialCheck,
    Database,
    Endpoint,
    Operation,
    PasswordReset,
    ProjectConsumption,
    ProjectSummary,
    Role,
)
from tenantdb.neon.priority import Priority, background_calls, current_priority
from tenantdb.neon.retry import Timing

Transport: TypeAlias = httpx.AsyncBaseTransport
"""What ``transport=`` takes (tests pass ``httpx.MockTransport``), named here so that modules
outside ``tenantdb.neon`` can annotate it without importing httpx themselves."""

__all__ = [
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

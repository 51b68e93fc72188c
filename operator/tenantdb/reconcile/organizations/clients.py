"""One Neon client per organisation: its own key, and its own rate limiter sized from its spec."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantdb.api.organization import NeonOrganizationSpec
from tenantdb.config import Settings
from tenantdb.metrics import Metrics
from tenantdb.neon import NeonClient, Rate, RateLimiter
from tenantdb.neon.limiter import consumption_rate

if TYPE_CHECKING:  # the transport seam for tests; httpx itself stays in tenantdb.neon
    import httpx

__all__ = ["organization_client"]


def organization_client(
    spec: NeonOrganizationSpec,
    api_key: str,
    *,
    settings: Settings,
    metrics: Metrics | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> NeonClient:
    limits = spec.rate_limits
    limiter = RateLimiter(
        account=Rate(limits.per_minute, 60.0),
        per_route=Rate(limits.per_route_per_second, 1.0),
        consumption=consumption_rate(limits.consumption_per_minute),
        background_share=settings.neon_background_share,
    )
    return NeonClient(
        base_url=settings.neon_api_url,
        api_key=api_key,
        org_id=spec.organization_id,
        timeout=settings.neon_request_timeout_seconds,
        retry_deadline=settings.neon_retry_deadline_seconds,
        limiter=limiter,
        metrics=metrics,
        transport=transport,
    )

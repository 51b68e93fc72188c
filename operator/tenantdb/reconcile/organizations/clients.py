"""One Neon client per organisation: its own key, and its own rate limiter sized from its spec."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantdb.api.organization import NeonOrganizationSpec
from tenantdb.config import Settings
from tenantdb.metrics import Metrics
from tenantdb.neon import NeonClient, Rate, RateLimiter
from tenantdb.neon.limiter import consumption_rate, shared

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
    share = settings.neon_rate_limit_share  # shards sharing this organisation split its limits
    limiter = RateLimiter(
        account=Rate(shared(limits.per_minute, share), 60.0),
        per_route=Rate(shared(limits.per_route_per_second, share), 1.0),
        consumption=consumption_rate(shared(limits.consumption_per_minute, share)),
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

"""The budget path's Neon calls, each with the key of the project's own organisation.

The consumption sync asks each organisation for its own projects (Neon's consumption route is
per organisation, and one key reaches one organisation); an organisation that cannot answer
(its key rejected, Neon unreachable for it) leaves its projects' costs as they were, and the
others' spend is still counted. Endpoint switches and compute quotas go to the client of the
project's organisation. Projects of no NeonOrganization are the implicit organisation's
(``Runtime.neon``), as without a pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Sequence
from typing import Any

from tenantdb.handlers.runtime import Runtime
from tenantdb.neon import NeonClient, NeonError
from tenantdb.reconcile.consumption import PartialConsumption, ProjectConsumptionLike

__all__ = ["OrganizationRouter"]

_log = logging.getLogger(__name__)


class OrganizationRouter:
    """A ``ConsumptionSource``, ``EndpointSwitch`` and ``QuotaSetter`` over every organisation."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def _client(self, project_id: str) -> NeonClient:
        runtime = self._runtime
        assert runtime.neon is not None
        organization = runtime.project_organizations.get(project_id)
        client = runtime.client_of(organization) if organization is not None else None
        return client or runtime.neon

    def _by_organization(self, project_ids: Sequence[str]) -> dict[str | None, list[str]]:
        groups: dict[str | None, list[str]] = {}
        known = self._runtime.project_organizations
        for project_id in project_ids:
            groups.setdefault(known.get(project_id), []).append(project_id)
        return groups

    # -- ConsumptionSource -------------------------------------------------------------------
    async def consumption(
        self,
        *,
        project_ids: Sequence[str],
        start: datetime.datetime,
        end: datetime.datetime,
        granularity: str,
        metrics: Sequence[str],
    ) -> Sequence[ProjectConsumptionLike]:
        groups = self._by_organization(project_ids)
        if list(groups) == [None]:  # no pool: one call, as before
            return await self._client(project_ids[0]).consumption(
                project_ids=project_ids, start=start, end=end, granularity=granularity, metrics=metrics
            )

        async def one(organization: str | None, ids: list[str]) -> Sequence[ProjectConsumptionLike] | None:
            client = self._runtime.client_of(organization)
            pool = self._runtime.organizations
            if client is None or (
                organization is not None and pool is not None and pool.rejected(organization)
            ):
                return None
            try:
                return await client.consumption(
                    project_ids=ids, start=start, end=end, granularity=granularity, metrics=metrics
                )
            except NeonError as exc:
                _log.warning("consumption of organisation %s: %s", organization or "(default)", exc)
                return None

        organizations = list(groups)
        answers = await asyncio.gather(*(one(org, groups[org]) for org in organizations))
        items: list[ProjectConsumptionLike] = []
        unavailable: set[str] = set()
        for organization, answer in zip(organizations, answers, strict=True):
            if answer is None:
                unavailable.update(groups[organization])
            else:
                items.extend(answer)
        if len(unavailable) == len(project_ids):
            raise NeonUnavailableEverywhereError(len(organizations))
        return PartialConsumption(items, frozenset(unavailable)) if unavailable else items

    # -- EndpointSwitch and QuotaSetter: the project's own organisation's client ----------------
    def serialised(self, project_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._client(project_id).serialised(project_id)

    async def list_endpoints(self, project_id: str) -> list[Any]:
        return list(await self._client(project_id).list_endpoints(project_id))

    async def update_endpoint(
        self,
        project_id: str,
        endpoint_id: str,
        *,
        autoscaling_min_cu: float | None = None,
        autoscaling_max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
        disabled: bool | None = None,
    ) -> list[Any]:
        return list(
            await self._client(project_id).update_endpoint(
                project_id,
                endpoint_id,
                autoscaling_min_cu=autoscaling_min_cu,
                autoscaling_max_cu=autoscaling_max_cu,
                suspend_timeout_seconds=suspend_timeout_seconds,
                disabled=disabled,
            )
        )

    async def wait_for_operations(self, project_id: str, operations: Any, *, timeout: float = 300.0) -> None:
        await self._client(project_id).wait_for_operations(project_id, operations, timeout=timeout)

    async def set_compute_quota(self, project_id: str, compute_time_seconds: int) -> None:
        await self._client(project_id).set_compute_quota(project_id, compute_time_seconds)


class NeonUnavailableEverywhereError(Exception):
    """No organisation answered: the sync fails as a whole (costs unchanged)."""

    def __init__(self, organizations: int) -> None:
        super().__init__(f"none of the {organizations} organisations answered the consumption query")

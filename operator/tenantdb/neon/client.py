"""``NeonClient``: the Neon API v2 calls the operator makes, and nothing else.

Each method is one Neon call (or a short, bounded series: pages, batches, polls) and returns
the models of ``tenantdb.neon.models``. Rate limiting, retries, metrics and errors live in
``session``; what each answer means lives here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx
from pydantic import SecretStr

from tenantdb.config import Settings
from tenantdb.metrics import Metrics
from tenantdb.neon.errors import (
    NeonAuthError,
    NeonClientError,
    NeonNotFoundError,
    NeonOperationFailedError,
    NeonTransientError,
)
from tenantdb.neon.limiter import RateLimiter
from tenantdb.neon.models import (
    Branch,
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
from tenantdb.neon.retry import Timing
from tenantdb.neon.serial import ProjectSerializer
from tenantdb.neon.session import QueryParams, Route, Session, parse
from tenantdb.neon.wire import (
    AuthAnswer,
    BranchesAnswer,
    ConnectionURIAnswer,
    ConsumptionAnswer,
    CreatedProjectAnswer,
    DatabasesAnswer,
    EndpointsAnswer,
    OperationAnswer,
    OperationsAnswer,
    OrganizationsAnswer,
    PasswordAnswer,
    ProjectAnswer,
    ProjectsAnswer,
    ResetPasswordAnswer,
    RolesAnswer,
    UpdatedProjectAnswer,
    consumption_by_project,
)

__all__ = ["NeonClient"]

logger = logging.getLogger("tenantdb.neon")

GET_AUTH = Route("GET", "/auth")
GET_MY_ORGANIZATIONS = Route("GET", "/users/me/organizations")
LIST_PROJECTS = Route("GET", "/projects")
CREATE_PROJECT = Route("POST", "/projects", idempotent=False)
GET_PROJECT = Route("GET", "/projects/{project_id}")
DELETE_PROJECT = Route("DELETE", "/projects/{project_id}")
UPDATE_PROJECT = Route("PATCH", "/projects/{project_id}")
# Recovering twice answers 400 the second time (not deleted): the caller reads the project then.
RECOVER_PROJECT = Route("POST", "/projects/{project_id}/recover")
LIST_ENDPOINTS = Route("GET", "/projects/{project_id}/endpoints")
# PATCH with absolute values: sending it twice leaves the endpoint as sending it once.
UPDATE_ENDPOINT = Route("PATCH", "/projects/{project_id}/endpoints/{endpoint_id}")
GET_OPERATION = Route("GET", "/projects/{project_id}/operations/{operation_id}")
GET_CONNECTION_URI = Route("GET", "/projects/{project_id}/connection_uri")
PROJECT_CONSUMPTION = Route("GET", "/consumption_history/v2/projects")
LIST_BRANCHES = Route("GET", "/projects/{project_id}/branches")
LIST_ROLES = Route("GET", "/projects/{project_id}/branches/{branch_id}/roles")
LIST_DATABASES = Route("GET", "/projects/{project_id}/branches/{branch_id}/databases")
REVEAL_PASSWORD = Route(
    "GET", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password"
)
# Retried like an idempotent call: a repeat only issues yet another password, and the answer
# the client finally reads names the one that holds (a 423 keeps the repeat from overtaking
# the first reset's operations).
RESET_PASSWORD = Route("POST", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password")

# Neon's answer to reveal_password when it keeps no password it could show.
_PASSWORD_NOT_STORED = 412

PROJECTS_PAGE = 400  # Neon's maximum page for GET /projects
CONSUMPTION_BATCH = 100  # Neon's maximum of project_ids (and of limit) per consumption call
GRANULARITIES = frozenset({"hourly", "daily", "monthly"})
DEFAULT_CONSUMPTION_METRICS = ("compute_unit_seconds", "root_branch_bytes_month", "child_branch_bytes_month")


class NeonClient:
    """The operator's Neon API client. One per process, sharing one ``RateLimiter``."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | SecretStr,
        org_id: str = "",
        timeout: float = 30.0,
        retry_deadline: float = 120.0,
        limiter: RateLimiter | None = None,
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timing: Timing | None = None,
    ) -> None:
        """``timing``, when given, replaces ``retry_deadline`` (tests pass fake clocks and sleeps)."""
        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not key.get_secret_value():
            raise ValueError("a Neon API key is required (NEON_API_KEY)")
        self.base_url = base_url
        self.org_id = org_id
        self.metrics = metrics if metrics is not None else Metrics()
        self._session = Session(
            base_url=base_url,
            api_key=key,
            timeout=timeout,
            limiter=limiter if limiter is not None else RateLimiter(),
            metrics=self.metrics,
            timing=timing if timing is not None else Timing(retry_deadline=retry_deadline),
            transport=transport,
        )
        self._serial = ProjectSerializer()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
    ) -> NeonClient:
        return cls(
            base_url=settings.neon_api_url,
            api_key=settings.neon_api_key,
            org_id=settings.neon_org_id,
            timeout=settings.neon_request_timeout_seconds,
            retry_deadline=settings.neon_retry_deadline_seconds,
            limiter=limiter if limiter is not None else RateLimiter.from_settings(settings),
            metrics=metrics,
            transport=transport,
        )

    def calls_last_minute(self) -> int:
        """Calls this client (its key, its limiter) made in the past 60 s."""
        return self._session.limiter.calls_last_minute()

    def __repr__(self) -> str:
        return f"NeonClient(base_url={self.base_url!r}, org_id={self.org_id!r})"

    async def aclose(self) -> None:
        await self._session.aclose()

    async def __aenter__(self) -> NeonClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- credentials --------------------------------------------------------------------------

    async def validate(self) -> CredentialCheck:
        """Prove at start-up that the key works and that the organisation is known.

        ``GET /auth`` tells an organisation key (``api_key_org``) from a personal one
        (``api_key_user``); ``GET /users/me/organizations`` lists the organisations the key
        reaches (an organisation key reaches exactly its own). A personal key needs ``org_id``
        (Neon requires it on list, create and consumption calls); an organisation key without
        one works in its own organisation, which this client then remembers.
        """
        try:
            auth = parse(AuthAnswer, await self._session.call(GET_AUTH), GET_AUTH)
            organizations = parse(
                OrganizationsAnswer, await self._session.call(GET_MY_ORGANIZATIONS), GET_MY_ORGANIZATIONS
            ).organizations
        except NeonAuthError as exc:
            raise NeonAuthError(
                status=exc.status,
                code=exc.code,
                message=f"Neon rejected the API key; check NEON_API_KEY ({exc.message})",
                route=exc.route,
            ) from exc
        reachable = sorted(org.id for org in organizations)
        personal = auth.auth_method == "api_key_user"
        if self.org_id and self.org_id not in reachable:
            owner = (
                "its user is not a member" if personal else f"it belongs to {', '.join(reachable) or 'none'}"
            )
            raise NeonAuthError(
                status=None,
                code="ORG_NOT_REACHABLE",
                route=GET_MY_ORGANIZATIONS.label,
                message=f"NEON_ORG_ID is {self.org_id}, but the API key cannot act in it ({owner})",
            )
        if not self.org_id:
            if personal or len(reachable) != 1:
                choices = f" (one of: {', '.join(reachable)})" if reachable else ""
                why = (
                    "a personal Neon API key needs"
                    if personal
                    else "the Neon API key reaches several organisations: set"
                )
                raise NeonAuthError(
                    status=None,
                    code="ORG_ID_REQUIRED",
                    route=GET_AUTH.label,
                    message=f"{why} NEON_ORG_ID{choices}; or use an organisation API key",
                )
            self.org_id = reachable[0]
            logger.info("Neon API key belongs to organisation %s", self.org_id)
        return CredentialCheck(account_id=auth.account_id, auth_method=auth.auth_method, org_id=self.org_id)

    # --- projects -------------------------------------------------------------------------------

    async def create_project(
        self,
        *,
        name: str,
        region_id: str,
        pg_version: int,
        database_name: str,
        role_name: str | None,
        autoscaling_min_cu: float,
        autoscaling_max_cu: float,
        suspend_timeout_seconds: int,
        history_retention_seconds: int | None = None,
        quotas: Mapping[str, int] | None = None,
    ) -> CreatedProject:
        """Create a project with one database owned by one role; not retried when ambiguous.

        ``history_retention_seconds`` ``None``: Neon's default; ``quotas``: ``settings.quota``
        by Neon's names (none given: none set).

        A ``NeonTransientError`` with ``ambiguous`` set means Neon may have made the project:
        look for it by name (``find_projects``) before creating it again.
        """
        branch: dict[str, str] = {"database_name": database_name}
        if role_name:
            branch["role_name"] = role_name
        project: dict[str, Any] = {
            "name": name,
            "region_id": region_id,
            "pg_version": pg_version,
            "branch": branch,
            # The non-deprecated place for compute settings; the first endpoint gets them too.
            "default_endpoint_settings": {
                "autoscaling_limit_min_cu": autoscaling_min_cu,
                "autoscaling_limit_max_cu": autoscaling_max_cu,
                "suspend_timeout_seconds": suspend_timeout_seconds,
            },
        }
        if history_retention_seconds is not None:
            project["history_retention_seconds"] = history_retention_seconds
        if quotas:
            project["settings"] = {"quota": dict(quotas)}
        if self.org_id:
            project["org_id"] = self.org_id
        response = await self._session.call(CREATE_PROJECT, json={"project": project})
        answer = parse(CreatedProjectAnswer, response, CREATE_PROJECT)
        created = answer.created(database_name=database_name, role_name=role_name)
        self._serial.started(created.project.id, created.operations)
        return created

    async def find_projects(self, *, search: str, recoverable: bool = False) -> list[ProjectSummary]:
        """Projects whose name or id *contains* ``search`` (Neon matches partially), all pages.

        ``recoverable``: the deleted projects still inside Neon's recovery window instead.
        One call per 400 projects.

        Raises ``NeonTransientError`` when Neon reports projects it could not describe in time
        (``unavailable_project_ids``): an incomplete answer must not pass for "not found".
        """
        params: dict[str, str | int] = {"search": search}
        if recoverable:
            params["recoverable"] = "true"
        return await self._list_projects(params)

    async def list_projects(self) -> list[ProjectSummary]:
        """Every live project of the organisation, whatever its name (one call per 400): what
        a platform already has, before the operator takes it over (``tenantdb adopt``)."""
        return await self._list_projects({})

    async def _list_projects(self, query: dict[str, str | int]) -> list[ProjectSummary]:
        """``GET /projects`` with ``query``, every page; an incomplete answer raises."""
        found: list[ProjectSummary] = []
        seen_cursors: set[str] = set()
        cursor = ""
        while True:
            params: dict[str, str | int] = {**query, "limit": PROJECTS_PAGE}
            if self.org_id:
                params["org_id"] = self.org_id
            if cursor:
                params["cursor"] = cursor
            page = parse(
                ProjectsAnswer, await self._session.call(LIST_PROJECTS, params=params), LIST_PROJECTS
            )
            if page.unavailable_project_ids:
                raise NeonTransientError(
                    status=200,
                    code="INCOMPLETE_ANSWER",
                    route=LIST_PROJECTS.label,
                    message=f"Neon could not list {len(page.unavailable_project_ids)} project(s) in time",
                )
            found.extend(page.projects)
            cursor = page.pagination.cursor if page.pagination else ""
            # Stop on a short page too: Neon may hand out a cursor even after the last page.
            if len(page.projects) < PROJECTS_PAGE or not cursor or cursor in seen_cursors:
                return found
            seen_cursors.add(cursor)

    async def get_project(self, project_id: str) -> ProjectSummary:
        """The project; ``NeonNotFoundError`` when it does not exist (or was deleted)."""
        response = await self._session.call(GET_PROJECT, ids={"project_id": project_id})
        return parse(ProjectAnswer, response, GET_PROJECT).project

    async def delete_project(self, project_id: str) -> bool:
        """``True`` when deleted now, ``False`` when it was already gone (404)."""
        async with self._mutation(project_id):
            try:
                await self._session.call(DELETE_PROJECT, ids={"project_id": project_id})
            except NeonNotFoundError:
                return False
            finally:
                self._serial.forget(project_id)
        return True

    async def set_compute_quota(self, project_id: str, compute_time_seconds: int) -> None:
        """Set ``settings.quota.compute_time_seconds`` (CU-seconds this period; 0: unlimited)."""
        if compute_time_seconds < 0:
            raise ValueError(f"a quota cannot be negative, got {compute_time_seconds}")
        async with self._mutation(project_id):
            response = await self._session.call(
                UPDATE_PROJECT,
                ids={"project_id": project_id},
                json={"project": {"settings": {"quota": {"compute_time_seconds": compute_time_seconds}}}},
            )
            operations = parse(OperationsAnswer, response, UPDATE_PROJECT).operations
            self._serial.started(project_id, operations)

    async def update_project_settings(
        self,
        project_id: str,
        *,
        history_retention_seconds: int | None = None,
        quotas: Mapping[str, int] | None = None,
    ) -> None:
        """Set the project's history retention and the quotas named (Neon keeps the others);
        absolute values, so sending it twice leaves the project as sending it once."""
        project: dict[str, Any] = {}
        if history_retention_seconds is not None:
            if history_retention_seconds < 0:
                raise ValueError(f"a history retention cannot be negative, got {history_retention_seconds}")
            project["history_retention_seconds"] = history_retention_seconds
        if quotas:
            if any(value < 0 for value in quotas.values()):
                raise ValueError("a quota cannot be negative")
            project["settings"] = {"quota": dict(quotas)}
        if not project:
            raise ValueError("update_project_settings needs a retention or a quota to set")
        async with self._mutation(project_id):
            response = await self._session.call(
                UPDATE_PROJECT, ids={"project_id": project_id}, json={"project": project}
            )
            operations = parse(OperationsAnswer, response, UPDATE_PROJECT).operations
            self._serial.started(project_id, operations)

    async def recover_project(self, project_id: str) -> ProjectSummary:
        """Bring a deleted project back (inside Neon's recovery window): data, endpoints, URIs.

        ``NeonNotFoundError`` when it is unknown or past its window; ``NeonBadRequestError``
        when it is not deleted.
        """
        async with self._mutation(project_id):
            response = await self._session.call(RECOVER_PROJECT, ids={"project_id": project_id})
        return parse(ProjectAnswer, response, RECOVER_PROJECT).project

    async def rename_project(self, project_id: str, name: str) -> ProjectSummary:
        """Give the project a new name (1 to 256 characters); returns it renamed."""
        if not 1 <= len(name) <= 256:
            raise ValueError(f"a project name has 1 to 256 characters, got {len(name)}")
        async with self._mutation(project_id):
            response = await self._session.call(
                UPDATE_PROJECT, ids={"project_id": project_id}, json={"project": {"name": name}}
            )
            answer = parse(UpdatedProjectAnswer, response, UPDATE_PROJECT)
            self._serial.started(project_id, answer.operations)
        return answer.project

    # --- branches, roles and databases ----------------------------------------------------------

    async def list_branches(self, project_id: str) -> list[Branch]:
        """The project's branches; the one marked ``default`` is what its connection URI reaches."""
        response = await self._session.call(LIST_BRANCHES, ids={"project_id": project_id})
        return parse(BranchesAnswer, response, LIST_BRANCHES).branches

    async def list_roles(self, project_id: str, branch_id: str) -> list[Role]:
        ids = {"project_id": project_id, "branch_id": branch_id}
        return parse(RolesAnswer, await self._session.call(LIST_ROLES, ids=ids), LIST_ROLES).roles

    async def list_databases(self, project_id: str, branch_id: str) -> list[Database]:
        ids = {"project_id": project_id, "branch_id": branch_id}
        response = await self._session.call(LIST_DATABASES, ids=ids)
        return parse(DatabasesAnswer, response, LIST_DATABASES).databases

    async def reveal_password(self, project_id: str, branch_id: str, role_name: str) -> SecretStr | None:
        """The role's current password, or None when Neon keeps none it could show (412: the
        project was made with ``store_passwords: false``); ``reset_password`` then gives one."""
        try:
            response = await self._session.call(
                REVEAL_PASSWORD,
                ids={"project_id": project_id, "branch_id": branch_id},
                names={"role_name": role_name},
            )
        except NeonClientError as exc:
            if exc.status == _PASSWORD_NOT_STORED:
                return None
            raise
        return parse(PasswordAnswer, response, REVEAL_PASSWORD).password

    async def reset_password(self, project_id: str, branch_id: str, role_name: str) -> PasswordReset:
        """A new password for the role. It holds once ``operations`` finish: the old one works
        until then and the new one does not, and Neon then drops the compute's connections."""
        async with self._mutation(project_id):
            response = await self._session.call(
                RESET_PASSWORD,
                ids={"project_id": project_id, "branch_id": branch_id},
                names={"role_name": role_name},
            )
            reset = parse(ResetPasswordAnswer, response, RESET_PASSWORD).reset()
            self._serial.started(project_id, reset.operations)
        return reset

    # --- one mutation at a time per project -----------------------------------------------------

    def serialised(self, project_id: str) -> AbstractAsyncContextManager[None]:
        """Hold the project across a decision and the mutations that carry it out.

        The client's own mutations of the project take the same (re-entrant) lock, so a caller
        that decides what to send from state another task may change (the budget loop and a
        reconcile both setting ``disabled``) decides and sends without interleaving.
        """
        return self._serial.hold(project_id)

    @asynccontextmanager
    async def _mutation(self, project_id: str) -> AsyncIterator[None]:
        """Alone on the project, after the operations of its previous mutation have finished."""
        async with self._serial.hold(project_id):
            earlier = self._serial.unfinished(project_id)
            if earlier:
                try:
                    await self.wait_for_operations(project_id, earlier)
                except NeonOperationFailedError:
                    self._serial.forget(project_id)  # over, if unsuccessfully: not ours to report
            yield

    # --- compute endpoints and operations -------------------------------------------------------

    async def list_endpoints(self, project_id: str) -> list[Endpoint]:
        response = await self._session.call(LIST_ENDPOINTS, ids={"project_id": project_id})
        return parse(EndpointsAnswer, response, LIST_ENDPOINTS).endpoints

    async def update_endpoint(
        self,
        project_id: str,
        endpoint_id: str,
        *,
        autoscaling_min_cu: float | None = None,
        autoscaling_max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
        disabled: bool | None = None,
    ) -> list[Operation]:
        """Set the given settings (absolute values only); returns the operations to wait for."""
        changes = {
            key: value
            for key, value in {
                "autoscaling_limit_min_cu": autoscaling_min_cu,
                "autoscaling_limit_max_cu": autoscaling_max_cu,
                "suspend_timeout_seconds": suspend_timeout_seconds,
                "disabled": disabled,
            }.items()
            if value is not None
        }
        if not changes:
            raise ValueError("update_endpoint needs at least one setting to change")
        async with self._mutation(project_id):
            response = await self._session.call(
                UPDATE_ENDPOINT,
                ids={"project_id": project_id, "endpoint_id": endpoint_id},
                json={"endpoint": changes},
            )
            operations = parse(OperationsAnswer, response, UPDATE_ENDPOINT).operations
            self._serial.started(project_id, operations)
        return operations

    async def get_operation(self, project_id: str, operation_id: str) -> Operation:
        response = await self._session.call(
            GET_OPERATION, ids={"project_id": project_id, "operation_id": operation_id}
        )
        return parse(OperationAnswer, response, GET_OPERATION).operation

    async def wait_for_operations(
        self,
        project_id: str,
        operations: Sequence[Operation],
        *,
        # Part of the interface the reconcilers use; an asyncio.timeout around the call could
        # not say which operations are unfinished, nor raise a Neon error.
        timeout: float = 300.0,
    ) -> None:
        """Return once every operation has finished (or was skipped).

        Raises ``NeonOperationFailedError`` for one that failed or was cancelled, and
        ``NeonTransientError`` when some are still running after ``timeout`` seconds.
        Neon runs a project's operations one after another: the last one finished means all
        are, so it is polled first; while it runs, the first unfinished one is polled too, so
        that a failure is reported as soon as it happens. Polls start after a short delay and
        back off (``Timing.poll_delay``).
        """
        await self._wait_for_operations(project_id, operations, timeout=timeout)
        self._serial.finished(project_id, operations)

    async def _wait_for_operations(
        self, project_id: str, operations: Sequence[Operation], *, timeout: float
    ) -> None:
        timing = self._session.timing
        pending = [op for op in operations if not op.done]
        deadline = timing.clock() + timeout
        poll = 0
        while pending:
            if pending[0].failed:
                op = pending[0]
                raise NeonOperationFailedError(
                    project_id=project_id,
                    operation_id=op.id,
                    action=op.action,
                    status=op.status,
                    error=op.error,
                )
            remaining = deadline - timing.clock()
            if remaining <= 0:
                raise NeonTransientError(
                    status=None,
                    code="OPERATIONS_PENDING",
                    route=GET_OPERATION.label,
                    message=f"{len(pending)} operation(s) of project {project_id} unfinished after "
                    f"{timeout:g}s (first: {pending[0].action} {pending[0].status})",
                )
            await timing.sleep(min(timing.poll_delay(poll), remaining))
            poll += 1
            if len(pending) > 1:
                # The last one first: finished, it vouches for those before it (one call, not
                # one per operation: a create starts two). Failed, the loop reports it.
                pending[-1] = await self.get_operation(project_id, pending[-1].id)
                if pending[-1].done:
                    return
                if pending[-1].failed:
                    pending = pending[-1:]
                    continue
            while pending:
                pending[0] = await self.get_operation(project_id, pending[0].id)
                if not pending[0].done:
                    break
                pending.pop(0)

    # --- connection -----------------------------------------------------------------------------

    async def get_connection_uri(
        self, project_id: str, *, database_name: str, role_name: str, pooled: bool = False
    ) -> str:
        """The connection URI of the default branch's read-write endpoint. A secret: never log it."""
        params: dict[str, str] = {"database_name": database_name, "role_name": role_name}
        if pooled:
            params["pooled"] = "true"
        response = await self._session.call(GET_CONNECTION_URI, ids={"project_id": project_id}, params=params)
        return parse(ConnectionURIAnswer, response, GET_CONNECTION_URI).uri.get_secret_value()

    # --- consumption ----------------------------------------------------------------------------

    async def consumption(
        self,
        *,
        project_ids: Sequence[str],
        start: datetime,
        end: datetime,
        granularity: str = "monthly",
        metrics: Sequence[str] = DEFAULT_CONSUMPTION_METRICS,
    ) -> list[ProjectConsumption]:
        """Each project's consumption in ``[start, end)``: totals per metric, and per timeframe.

        Asks in batches of 100 ids and follows cursors. Needs the organisation id (Neon
        requires it here); without a configured one, ``validate()`` learns it from the key.
        Projects Neon has no data for are absent from the result.
        """
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {sorted(GRANULARITIES)}, got {granularity!r}")
        if not metrics:
            raise ValueError("consumption needs at least one metric")
        if not project_ids:
            return []
        org_id = self.org_id or (await self.validate()).org_id
        base: list[tuple[str, str | int]] = [
            ("from", _rfc3339(start)),
            ("to", _rfc3339(end)),
            ("granularity", granularity),
            ("org_id", org_id),
            ("limit", CONSUMPTION_BATCH),
            *(("metrics", metric) for metric in metrics),
        ]
        pages: list[ConsumptionAnswer] = []
        ids = list(dict.fromkeys(project_ids))  # once each, in order
        for first in range(0, len(ids), CONSUMPTION_BATCH):
            batch = ids[first : first + CONSUMPTION_BATCH]
            params = [*base, *(("project_ids", project_id) for project_id in batch)]
            pages.extend(await self._consumption_pages(params, wanted=set(batch)))
        return consumption_by_project(pages, metrics=metrics)

    async def _consumption_pages(
        self, params: list[tuple[str, str | int]], *, wanted: set[str]
    ) -> list[ConsumptionAnswer]:
        pages: list[ConsumptionAnswer] = []
        answered: set[str] = set()
        seen_cursors: set[str] = set()
        cursor = ""
        while True:
            query: QueryParams = [*params, ("cursor", cursor)] if cursor else params
            response = await self._session.call(PROJECT_CONSUMPTION, params=query)
            page = parse(ConsumptionAnswer, response, PROJECT_CONSUMPTION)
            pages.append(page)
            answered.update(project.project_id for project in page.projects)
            cursor = page.pagination.cursor if page.pagination else ""
            # A full page comes with a cursor even when nothing is left: once every id asked
            # for has been answered, following it would only cost a call for an empty page.
            done = wanted <= answered or len(page.projects) < CONSUMPTION_BATCH
            if done or not cursor or cursor in seen_cursors:
                return pages
            seen_cursors.add(cursor)


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"consumption needs timezone-aware bounds, got naive {moment.isoformat()}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

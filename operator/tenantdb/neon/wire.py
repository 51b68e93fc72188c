"""Neon's answers as they come over the wire, and their translation into ``models``.

The public models are what callers use; these envelopes mirror the JSON around them
(``{"projects": [...], "pagination": {...}}``) and exist only to be validated and unpacked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr

from tenantdb.neon.models import (
    DEFAULT_PORT,
    Branch,
    ConnectionDetails,
    ConsumptionTimeframe,
    CreatedProject,
    Database,
    Endpoint,
    NeonModel,
    Operation,
    PasswordReset,
    ProjectConsumption,
    ProjectSummary,
    Role,
)

__all__ = [
    "AuthAnswer",
    "BranchesAnswer",
    "ConnectionURIAnswer",
    "ConsumptionAnswer",
    "CreatedProjectAnswer",
    "DatabasesAnswer",
    "EndpointsAnswer",
    "OperationAnswer",
    "OperationsAnswer",
    "OrganizationsAnswer",
    "PasswordAnswer",
    "ProjectAnswer",
    "ProjectsAnswer",
    "ResetPasswordAnswer",
    "RolesAnswer",
    "UpdatedProjectAnswer",
    "consumption_by_project",
]


class Pagination(NeonModel):
    cursor: str = ""


class ProjectsAnswer(NeonModel):
    projects: list[ProjectSummary]
    pagination: Pagination | None = None
    # Projects Neon knows of but could not describe in time: a search that has any is incomplete.
    unavailable_project_ids: list[str] = Field(default_factory=list)


class ProjectAnswer(NeonModel):
    project: ProjectSummary


class UpdatedProjectAnswer(NeonModel):
    project: ProjectSummary
    operations: list[Operation]


class EndpointsAnswer(NeonModel):
    endpoints: list[Endpoint]


class BranchesAnswer(NeonModel):
    branches: list[Branch]
    pagination: Pagination | None = None


class RolesAnswer(NeonModel):
    roles: list[Role]


class DatabasesAnswer(NeonModel):
    databases: list[Database]


class PasswordAnswer(NeonModel):
    password: SecretStr


class RoleWithPassword(NeonModel):
    name: str
    password: SecretStr


class ResetPasswordAnswer(NeonModel):
    role: RoleWithPassword
    operations: list[Operation]

    def reset(self) -> PasswordReset:
        return PasswordReset(
            role_name=self.role.name, password=self.role.password, operations=self.operations
        )


class OperationsAnswer(NeonModel):
    operations: list[Operation]


class OperationAnswer(NeonModel):
    operation: Operation


class ConnectionURIAnswer(NeonModel):
    uri: SecretStr


class AuthAnswer(NeonModel):
    account_id: str
    auth_method: str


class Organization(NeonModel):
    id: str
    name: str = ""


class OrganizationsAnswer(NeonModel):
    organizations: list[Organization]


# --- POST /projects --------------------------------------------------------------------------


class ConnectionParameters(NeonModel):
    database: str
    role: str
    password: SecretStr
    host: str
    pooler_host: str


class ConnectionURI(NeonModel):
    connection_uri: SecretStr
    connection_parameters: ConnectionParameters

    def details(self) -> ConnectionDetails:
        params = self.connection_parameters
        uri = self.connection_uri.get_secret_value()
        password = params.password.get_secret_value()
        parts = urlsplit(uri)
        try:
            port = parts.port
        except ValueError:
            port = None
        # The pooled URI is Neon's URI with the pooler's host: same scheme, database and options
        # (sslmode, channel_binding); the credentials percent-encoded.
        netloc = f"{quote(params.role, safe='')}:{quote(password, safe='')}@{params.pooler_host}"
        if port is not None:
            netloc += f":{port}"
        pooled = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return ConnectionDetails(
            uri=self.connection_uri,
            pooled_uri=SecretStr(pooled),
            host=params.host,
            pooler_host=params.pooler_host,
            database=params.database,
            role=params.role,
            password=params.password,
            port=port or DEFAULT_PORT,
        )


class CreatedProjectAnswer(NeonModel):
    project: ProjectSummary
    branch: Branch
    endpoints: list[Endpoint]
    operations: list[Operation]
    connection_uris: list[ConnectionURI] = Field(min_length=1)

    def created(self, *, database_name: str, role_name: str | None) -> CreatedProject:
        # One URI per role and database; ours is the one for the database (and role) we asked for.
        def rank(item: ConnectionURI) -> tuple[bool, bool]:
            params = item.connection_parameters
            return params.database == database_name, role_name is None or params.role == role_name

        connection = max(self.connection_uris, key=rank)  # max keeps the first of equals
        return CreatedProject(
            project=self.project,
            branch_id=self.branch.id,
            endpoints=self.endpoints,
            operations=self.operations,
            connection=connection.details(),
        )


# --- GET /consumption_history/v2/projects ----------------------------------------------------


class MetricValue(NeonModel):
    metric_name: str
    value: int


class Timeframe(NeonModel):
    timeframe_start: datetime
    timeframe_end: datetime | None = None
    metrics: list[MetricValue] = Field(default_factory=list)


class Period(NeonModel):
    consumption: list[Timeframe] = Field(default_factory=list)


class ProjectPeriods(NeonModel):
    project_id: str
    periods: list[Period] = Field(default_factory=list)


class ConsumptionAnswer(NeonModel):
    projects: list[ProjectPeriods]
    pagination: Pagination | None = None


def consumption_by_project(
    pages: list[ConsumptionAnswer], *, metrics: Sequence[str]
) -> list[ProjectConsumption]:
    """Every project's timeframes and totals, from all pages (a project may span several).

    Each asked-for metric has a total, 0 when Neon reported none; a project Neon did not
    mention at all is left out (no data is not the same as no use).
    """
    frames: dict[str, list[ConsumptionTimeframe]] = defaultdict(list)
    for page in pages:
        for project in page.projects:
            frames[project.project_id].extend(
                ConsumptionTimeframe(
                    start=frame.timeframe_start,
                    end=frame.timeframe_end,
                    metrics={m.metric_name: m.value for m in frame.metrics},
                )
                for period in project.periods
                for frame in period.consumption
            )
    result = []
    for project_id, timeframes in frames.items():
        totals = dict.fromkeys(metrics, 0)
        for frame in timeframes:
            for name, value in frame.metrics.items():
                totals[name] = totals.get(name, 0) + value
        result.append(ProjectConsumption(project_id=project_id, metrics=totals, timeframes=timeframes))
    return result

"""``tenantdb describe``'s report: what is known about one tenant, as JSON and as one screen.

Each view is built from what Kubernetes or the metadata DB holds (``of``), read defensively: a
status is anyone's to write, so a missing or odd field shows as absent, never as an error. The
JSON keys are public (scripts read ``--output json``): add keys, never rename one.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from tenantdb.api import Tenant
from tenantdb.reconcile.conditions import parse_rfc3339, rfc3339

__all__ = [
    "BudgetView",
    "DecisionView",
    "OrphanView",
    "ResourceView",
    "RowView",
    "Suspension",
    "TenantReport",
    "as_json",
    "as_text",
]


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: datetime.datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None


@dataclasses.dataclass(frozen=True)
class ResourceView:
    kind: str
    namespace: str
    name: str
    user_id: str | None
    phase: str | None
    ready: bool | None
    ready_reason: str | None
    ready_message: str | None
    ready_since: str | None
    project_id: str | None
    project_name: str | None
    region: str | None
    pg_version: int | None
    endpoint_id: str | None
    secret_name: str | None
    cost_cents: int | None
    last_consumption_sync: str | None
    credentials_rotated_at: str | None
    adopted_at: str | None
    original_project_name: str | None
    deleting: bool
    created_at: str | None = None  # metadata.creationTimestamp

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ResourceView:
        metadata, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        status = obj.get("status") or {}
        ready = _condition(status, "Ready")
        return cls(
            kind=str(obj.get("kind", "")),
            namespace=str(metadata.get("namespace", "")),
            name=str(metadata.get("name", "")),
            user_id=_str(spec.get("userId")),
            phase=_str(status.get("phase")),
            ready={"True": True, "False": False}.get(str(ready.get("status"))),
            ready_reason=_str(ready.get("reason")),
            ready_message=_str(ready.get("message")),
            ready_since=_str(ready.get("lastTransitionTime")),
            project_id=_str(status.get("projectId")),
            project_name=_str(status.get("projectName")),
            region=_str(status.get("region")) or _str(spec.get("region")),
            pg_version=_int(status.get("pgVersion")),
            endpoint_id=_str(status.get("endpointId")),
            secret_name=_str(status.get("secretName")),
            cost_cents=_int(status.get("currentPeriodCostCents")),
            last_consumption_sync=_str(status.get("lastConsumptionSync")),
            credentials_rotated_at=_str(status.get("credentialsRotatedAt")),
            adopted_at=_str(status.get("adoptedAt")),
            original_project_name=_str(status.get("originalProjectName")),
            deleting=bool(metadata.get("deletionTimestamp")),
            created_at=_str(metadata.get("creationTimestamp")),
        )

    @property
    def suspended(self) -> bool:
        return self.phase == "Suspended"

    @property
    def compute(self) -> str:
        """The compute endpoint as the operator left it: disabled while suspended."""
        if self.endpoint_id is None:
            return "none yet"
        return "disabled (suspended)" if self.suspended else "enabled"


@dataclasses.dataclass(frozen=True)
class BudgetView:
    namespace: str
    name: str
    tier: str | None
    limit_cents: int | None
    total_cost_cents: int | None
    exceeded: bool | None
    exceeded_since: str | None
    exceeded_message: str | None
    period_start: str | None
    last_sync: str | None
    others: int = 0  # more budgets naming the same user (the strictest applies)

    @classmethod
    def of(cls, obj: Mapping[str, Any], *, others: int = 0) -> BudgetView:
        metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
        exceeded = _condition(status, "BudgetExceeded")
        flag = status.get("exceeded")
        return cls(
            namespace=str(metadata.get("namespace", "")),
            name=str(metadata.get("name", "")),
            tier=_str(status.get("tier")) or _str((obj.get("spec") or {}).get("tier")),
            limit_cents=_int(status.get("limitCents")),
            total_cost_cents=_int(status.get("totalCostCents")),
            exceeded=flag if isinstance(flag, bool) else None,
            exceeded_since=_str(exceeded.get("lastTransitionTime")),
            exceeded_message=_str(exceeded.get("message")),
            period_start=_str(status.get("periodStart")),
            last_sync=_str(status.get("lastSyncTime")),
            others=others,
        )

    def with_row(self, row: Any) -> BudgetView:
        """The budget row's last sync, when the status has none (the row is written first)."""
        if self.last_sync is None and getattr(row, "last_sync", None) is not None:
            return dataclasses.replace(self, last_sync=rfc3339(row.last_sync))
        return self


@dataclasses.dataclass(frozen=True)
class RowView:
    """The tenant's row in Sim's table (the project Sim connects to), never its connection string."""

    project_id: str
    cost_cents: int
    last_consumption_sync: str | None
    user_owned: bool

    @classmethod
    def of(cls, row: Any) -> RowView | None:
        if row is None:
            return None
        return cls(
            project_id=str(row.project_id),
            cost_cents=int(row.current_period_cost_cents),
            last_consumption_sync=_time(row.last_consumption_sync),
            user_owned=bool(getattr(row, "user_owned", False)),
        )


@dataclasses.dataclass(frozen=True)
class OrphanView:
    project_id: str
    project_name: str | None
    disposition: str
    resource: str
    reason: str
    recorded_at: str

    @classmethod
    def of(cls, row: Any) -> OrphanView:
        return cls(
            project_id=row.project_id,
            project_name=row.project_name,
            disposition=row.disposition,
            resource=f"{row.kind} {row.namespace}/{row.name}",
            reason=row.reason,
            recorded_at=rfc3339(row.recorded_at),
        )


@dataclasses.dataclass(frozen=True)
class DecisionView:
    decided_at: str
    about: str  # "user alice", "workspace ws-1"
    action: str
    decided_by: str
    reason: str
    resource: str | None
    project_id: str | None
    spend_cents: int | None
    limit_cents: int | None
    details: Mapping[str, Any]

    @classmethod
    def of(cls, row: Any) -> DecisionView:
        return cls(
            decided_at=rfc3339(row.decided_at),
            about=f"{row.scope} {row.tenant_id}",
            action=row.action,
            decided_by=row.decided_by,
            reason=row.reason,
            resource=row.resource,
            project_id=row.project_id,
            spend_cents=row.spend_cents,
            limit_cents=row.limit_cents,
            details=dict(row.details),
        )


@dataclasses.dataclass(frozen=True)
class Suspension:
    """Whether the tenant's databases are suspended now, why, and since when."""

    suspended: bool
    why: str | None
    since: str | None

    @classmethod
    def of(
        cls, resources: Sequence[ResourceView], budget: BudgetView | None, decisions: Sequence[DecisionView]
    ) -> Suspension:
        held = [r for r in resources if r.suspended]
        over = budget is not None and budget.exceeded is True
        last = next((d for d in decisions if d.action in ("suspend", "resume")), None)
        if not held and not over:
            return cls(False, None, None)
        why = (
            f"{last.decided_by}: {last.reason}"
            if last is not None and last.action == "suspend"
            else (held[0].ready_message if held else None) or (budget.exceeded_message if budget else None)
        )
        since = min(
            (
                t
                for t in [*(r.ready_since for r in held), budget.exceeded_since if over and budget else None]
                if t
            ),
            default=last.decided_at if last is not None else None,
        )
        return cls(True, why, since)


@dataclasses.dataclass(frozen=True)
class TenantReport:
    tenant: Tenant
    user_id: str | None  # whose budget counts (a workspace's: its user)
    resources: Sequence[ResourceView]
    budget: BudgetView | None
    suspension: Suspension
    row: RowView | None
    orphans: Sequence[OrphanView]
    decisions: Sequence[DecisionView]
    problems: Sequence[str]
    generated_at: datetime.datetime


# --- JSON -------------------------------------------------------------------------------------------
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _plain(view: Any) -> dict[str, Any]:
    return {_camel(f.name): getattr(view, f.name) for f in dataclasses.fields(view)}


def as_json(report: TenantReport) -> dict[str, Any]:
    """The report as ``--output json`` prints it (camelCase keys, RFC 3339 times, UTC)."""
    resources = []
    for resource in report.resources:
        entry = _plain(resource)
        entry["compute"] = resource.compute
        entry["suspended"] = resource.suspended
        resources.append(entry)
    return {
        "scope": report.tenant.scope.owner,
        "id": report.tenant.id,
        "userId": report.user_id,
        "generatedAt": rfc3339(report.generated_at),
        "suspended": _plain(report.suspension),
        "budget": _plain(report.budget) if report.budget is not None else None,
        "resources": resources,
        "metadataRow": _plain(report.row) if report.row is not None else None,
        "orphans": [_plain(o) for o in report.orphans],
        "decisions": [_plain(d) for d in report.decisions],
        "problems": list(report.problems),
    }


# --- One screen -------------------------------------------------------------------------------------
def _ago(moment: str | None, now: datetime.datetime) -> str:
    """``2026-12-10T12:00:00Z (4m ago)``; ``-`` when unknown."""
    when = parse_rfc3339(moment)
    if when is None:
        return "-"
    seconds = int((now - when).total_seconds())
    if seconds < 0:
        return f"{moment}"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{moment} ({seconds // size}{unit} ago)"
    return f"{moment} ({seconds}s ago)"


def _cents(value: int | None) -> str:
    return "-" if value is None else f"{value} cents"


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else f"{value} cents"


def as_text(report: TenantReport) -> str:
    """One screen: the budget and its word, each resource, the row, orphans, recent decisions."""
    now = report.generated_at
    lines = [f"{report.tenant.label}" + (f" (billed to user {report.user_id})" if report.user_id and
             report.user_id != report.tenant.id else "")]  # fmt: skip
    budget = report.budget
    if budget is None:
        lines.append(
            "  Budget        none (the default tier applies)" if report.user_id else "  Budget        -"
        )
    else:
        share = ""
        if budget.limit_cents and budget.total_cost_cents is not None:
            share = f" ({100 * budget.total_cost_cents // budget.limit_cents}%)"
        lines += [
            f"  Budget        DatabaseBudget {budget.namespace}/{budget.name}, tier {budget.tier or '-'}"
            + (
                f" (and {budget.others} more naming this user: the strictest applies)"
                if budget.others
                else ""
            ),
            f"  Spend         {_cents(budget.total_cost_cents)} of {_limit(budget.limit_cents)}{share} "
            f"this period (from {budget.period_start or '-'})",
            f"  Last sync     {_ago(budget.last_sync, now)}",
        ]
    suspension = report.suspension
    if suspension.suspended:
        lines.append(f"  Suspended     yes, since {_ago(suspension.since, now)}")
        lines.append(f"    why         {suspension.why or '-'}")
    else:
        lines.append("  Suspended     no")
    if not report.resources:
        lines.append("  Resources     none found")
    for r in report.resources:
        state = r.phase or "-"
        if r.ready_reason:
            state += f" ({r.ready_reason}{': ' + r.ready_message if r.ready_message else ''})"
        rotated = _ago(r.credentials_rotated_at, now) if r.credentials_rotated_at else "never (not recorded)"
        synced = _ago(r.last_consumption_sync, now)
        lines += [
            "",
            f"  {r.kind} {r.namespace}/{r.name}" + ("  [being deleted]" if r.deleting else ""),
            f"    Created      {_ago(r.created_at, now)}",
            f"    Phase        {state}" + (f" since {r.ready_since}" if r.ready_since else ""),
            f"    Neon         project {r.project_id or '-'} ({r.project_name or '-'}), "
            f"region {r.region or '-'}, PostgreSQL {r.pg_version or '-'}",
            f"    Compute      endpoint {r.endpoint_id or '-'}: {r.compute}",
            f"    Cost         {_cents(r.cost_cents)} this period, synced {synced}",
            f"    Credentials  last rotated {rotated}",
            f"    Secret       {r.secret_name or '-'}",
        ]
        if r.adopted_at:
            lines.append(f"    Taken over   {r.adopted_at} (was {r.original_project_name or '-'!r})")
    lines.append("")
    row = report.row
    if row is not None:
        owner = " (the user's own database: never touched)" if row.user_owned else ""
        lines.append(f"  Metadata row  project {row.project_id}{owner}, cost {_cents(row.cost_cents)}, "
                     f"synced {_ago(row.last_consumption_sync, now)}")  # fmt: skip
    lines.append(f"  Orphans       {'none' if not report.orphans else len(report.orphans)}")
    for o in report.orphans:
        lines.append(f"    {o.disposition:<9} {o.project_id} ({o.project_name or '-'}) of {o.resource}, "
                     f"{o.recorded_at}: {o.reason}")  # fmt: skip
    lines.append(
        f"  Decisions     {'none recorded' if not report.decisions else f'latest {len(report.decisions)}'}"
    )
    for d in report.decisions:
        figures = ""
        if d.spend_cents is not None and f"spent {d.spend_cents} " not in d.reason:
            figures = f" [{d.spend_cents} of {_limit(d.limit_cents)}]"
        target = f" {d.project_id}" if d.project_id and d.action not in ("suspend", "resume") else ""
        lines.append(
            f"    {d.decided_at}  {d.action:<16} {d.about}{target} by {d.decided_by}: {d.reason}{figures}"
        )
    for problem in report.problems:
        lines.append(f"  ! {problem}")
    return "\n".join(lines) + "\n"

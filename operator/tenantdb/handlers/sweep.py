"""The fleet sweep (run by the fleet observation's pass): projects of ours whose resource is
gone, and retained projects past their retention; and the left-behind metrics read from the
orphan table. Every organisation the pass listed is swept, each in its own list and with its
own key (another organisation's key cannot see, let alone delete, its projects)."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from tenantdb.api import DATABASE_KINDS
from tenantdb.handlers.runtime import Runtime
from tenantdb.neon import background_calls
from tenantdb.neon.errors import NeonNotFoundError
from tenantdb.reconcile.retention import LiveHolders, RetentionResult, expire_retained
from tenantdb.reconcile.sweep import ProjectSweeper, sweep_once
from tenantdb.store import OrphanRow, StoreError

__all__ = ["OrganizationNeon", "OrphanSweep", "refresh_left_behind"]

_log = logging.getLogger(__name__)

_DATABASE_PLURALS = [kind.plural for kind in DATABASE_KINDS]


async def refresh_left_behind(runtime: Runtime) -> None:
    """Set the orphaned and retained gauges from ``tenantdb_orphaned_project`` (one query)."""
    if runtime.store is None:
        return
    try:
        counts = await runtime.store.count_orphans()
    except StoreError as exc:
        _log.warning("could not count the orphaned projects: %s", exc)
        return
    runtime.metrics.orphaned_projects.set(counts.get("orphaned", 0))
    runtime.metrics.retained_projects.set(counts.get("retained", 0))


class OrganizationNeon(ProjectSweeper, Protocol):
    """One organisation's client, as the sweep and the retention use it."""

    async def get_project(self, project_id: str) -> Any: ...


# One organisation's client and its list of this pass (projects carrying our prefix).
Listed = tuple[OrganizationNeon, list[Any]]

_T = TypeVar("_T")


def _once(fetch: Callable[[], Awaitable[_T]]) -> Callable[[], Awaitable[_T]]:
    """``fetch`` asked once for every organisation's round: the lists all came before it."""
    cached: list[_T] = []

    async def get() -> _T:
        if not cached:
            cached.append(await fetch())
        return cached[0]

    return get


class _ByOrganization:
    """The retention's Neon over every organisation's list: a project is read and deleted with
    the key of the organisation that listed it; one no list has is looked for in each in turn
    (another organisation's key answers 404), and is gone only when none has it."""

    def __init__(self, lists: Sequence[Listed]) -> None:
        self._clients = [client for client, _ in lists]
        self._owner = {str(project.id): client for client, listed in lists for project in listed}

    async def get_project(self, project_id: str) -> Any:
        owner = self._owner.get(project_id)
        if owner is not None:
            return await owner.get_project(project_id)
        for client in self._clients:
            try:
                project = await client.get_project(project_id)
            except NeonNotFoundError:
                if client is self._clients[-1]:
                    raise
                continue
            self._owner[project_id] = client
            return project
        raise NeonNotFoundError(  # no organisation at all (never: the implicit one is first)
            status=404, code="", message="in no organisation", route="GET /projects/{project_id}"
        )

    async def delete_project(self, project_id: str) -> bool:
        # Always listed or found by get_project first; the implicit organisation otherwise.
        return await self._owner.get(project_id, self._clients[0]).delete_project(project_id)


class _AlreadyListed:
    """The sweep's Neon, with the fleet observation's list of this pass as its list."""

    def __init__(self, neon: ProjectSweeper, listed: list[Any]) -> None:
        self._neon, self._listed = neon, listed

    async def find_projects(self, *, search: str, recoverable: bool = False) -> list[Any]:
        assert not recoverable
        return self._listed

    async def delete_project(self, project_id: str) -> bool:
        return await self._neon.delete_project(project_id)


def retention_deletes_per_round(runtime: Runtime) -> int:
    """About a minute of the background share of Neon's budget per sweep round (70 calls at
    Neon's 700/min and the default 0.1): a backlog of kept projects drains over several rounds
    without holding the fleet observation's pass for long."""
    settings = runtime.settings
    share = settings.neon_rate_limit_share * settings.neon_background_share
    return max(1, int(settings.neon_rate_limit_per_minute * share))


class OrphanSweep:
    """In the fleet observation's project list (no list of its own), at most once per
    ``TENANTDB_SWEEP_INTERVAL_SECONDS`` (the first one interval after start-up): projects of
    ours whose resource is gone (``TENANTDB_SWEEP_ACTION``), and retained projects past
    ``TENANTDB_RETAINED_PROJECT_RETENTION_DAYS``. Runs inside the observation's pass: only on
    the active replica."""

    def __init__(self, runtime: Runtime, *, clock: Callable[[], datetime.datetime] | None = None) -> None:
        self._runtime = runtime
        self._last = time.monotonic()
        # The retention's clock (tests move it on by days).
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))

    async def maybe_run(self, lists: Sequence[Listed]) -> None:
        """``lists``: each organisation's client with its list of this pass (the implicit
        organisation first)."""
        runtime, settings = self._runtime, self._runtime.settings
        sweeping = settings.effective_sweep_action.value != "off"
        expiring = settings.retained_project_retention_days is not None
        if not (sweeping or expiring):
            return
        if time.monotonic() - self._last < settings.sweep_interval_seconds:
            return
        assert runtime.store is not None
        assert runtime.kube is not None
        store, kube = runtime.store, runtime.kube
        namespaces = settings.namespaces or None

        async def live_uids() -> set[str]:
            uids: set[str] = set()
            for plural in _DATABASE_PLURALS:
                uids |= await kube.list_uids(plural=plural, namespaces=namespaces)
            return uids

        async def live_holders() -> LiveHolders:
            holders = LiveHolders(uids=set(), project_ids=set())
            for plural in _DATABASE_PLURALS:
                uids, projects = await kube.list_holders(plural=plural, namespaces=namespaces)
                holders.uids.update(uids)
                holders.project_ids.update(projects)
            return holders

        rows: list[OrphanRow] = []

        async def left_behind() -> dict[str, str]:
            rows[:] = await store.list_orphans()
            return {row.project_id: row.disposition for row in rows}

        done = True
        if sweeping:
            # Each organisation in its own list, its projects deleted with its own key. The live
            # resources and the orphan table are read once: every list was taken before them.
            live_once, left_behind_once = _once(live_uids), _once(left_behind)
            for client, listed in lists:
                try:
                    result = await sweep_once(
                        neon=_AlreadyListed(client, listed),
                        store=store,
                        live_uids=live_once,
                        left_behind=left_behind_once,
                        settings=settings,
                        now=datetime.datetime.now(datetime.UTC),
                    )
                except Exception as exc:  # an outage delays the sweep, never ends it
                    _log.warning("fleet sweep failed, retrying at the next pass: %s", exc)
                    done = False
                    continue
                if result.deleted:
                    runtime.metrics.swept_projects.labels(action="deleted").inc(len(result.deleted))
                if result.recorded:
                    runtime.metrics.swept_projects.labels(action="recorded").inc(len(result.recorded))
        if expiring:
            try:
                if not sweeping or not rows:
                    rows[:] = await store.list_orphans()
                with background_calls():  # nobody waits for a kept project to go
                    expired = await expire_retained(
                        neon=_ByOrganization(lists),
                        store=store,
                        rows=rows,
                        # Every organisation's: a kept project in another organisation than
                        # the implicit one is not taken for one deleted outside the operator.
                        listed=[project for _, listed in lists for project in listed],
                        live_holders=live_holders,
                        prefix=settings.project_name_prefix,
                        days=settings.retained_project_retention_days,
                        now=self._clock(),
                        per_round=retention_deletes_per_round(runtime),
                    )
            except Exception as exc:
                _log.warning("retained projects' retention failed, retrying at the next pass: %s", exc)
                done = False
            else:
                self._said(expired)
        if done:
            self._last = time.monotonic()
        await refresh_left_behind(runtime)

    def _said(self, result: RetentionResult) -> None:
        """Every delete logged and counted, as the sweep's are."""
        days = self._runtime.settings.retained_project_retention_days
        for project_id in result.deleted:
            _log.warning(
                "deleted Neon project %s: kept by deletionPolicy: Retain for more than %s days "
                "(TENANTDB_RETAINED_PROJECT_RETENTION_DAYS); its record leaves tenantdb_orphaned_project",
                project_id,
                days,
            )
        for project_id in result.gone:
            _log.info("retained Neon project %s no longer exists in Neon: record forgotten", project_id)
        for project_id, why in result.kept.items():
            _log.info("not deleting retained Neon project %s past its retention: %s", project_id, why)
        if result.deleted:
            self._runtime.metrics.swept_projects.labels(action="expired").inc(len(result.deleted))

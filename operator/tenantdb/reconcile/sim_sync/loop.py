"""The Sim sync's loop: poll cheaply, plan on change, apply through a token bucket.

State lives in Sim's tables and in the cluster; this process keeps only a cache of the last
cluster listing (updated with its own writes), of the last fingerprint, and what is left of the
last plan (the backlog). A restart, a second replica taking over or a failed write costs one
full pass (a fresh listing), never an outcome: every write is idempotent (create answers 409
when the object exists; delete ignores 404).

A pass writes for at most ``WRITE_SLICE_SECONDS``, deletes and patches before creates; what is
left waits for the next poll, which looks at Sim again first. So a backlog of any size (the
sync switched on over a Sim with 100,000 users: 300,000 creates, hours at the write rate) never
holds back a delete or a tier change by more than a slice, and every pass makes progress.

Only the active replica acts: ``is_active`` is asked before every pass, and a replica that is
not active drops its caches, so that it starts with a full pass when it becomes active.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tenantdb.api import GLOBAL_DATABASE, KINDS, WORKSPACE_DATABASE
from tenantdb.config import Settings
from tenantdb.kube import KubeError
from tenantdb.metrics import Metrics
from tenantdb.reconcile.reasons import Reason
from tenantdb.reconcile.sim_sync.backlog import Action, Backlog
from tenantdb.reconcile.sim_sync.bucket import TokenBucket
from tenantdb.reconcile.sim_sync.desired import (
    DesiredResource,
    NotCreated,
    TenantKey,
    desired_resources,
    left_alone,
)
from tenantdb.reconcile.sim_sync.names import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from tenantdb.reconcile.sim_sync.plan import (
    ClusterResource,
    SyncPlan,
    cluster_resource,
    index_cluster,
    make_plan,
    manifest,
)
from tenantdb.reconcile.sim_sync.unclaimed import PostEvent, UnclaimedPlans
from tenantdb.store import Fingerprint, SimSnapshot, StoreError

__all__ = ["WRITE_SLICE_SECONDS", "PassResult", "SimSync", "SimTables", "SyncResources"]

logger = logging.getLogger(__name__)

# A pass at 100,000 users takes seconds (bench/sim_sync.py) plus at most one write slice; one
# that takes this long is stuck (a call that never answers).
# After a failed pass (an outage): wait this long before the next one.
_FAILURE_PAUSE_SECONDS = 5.0
PASS_TIMEOUT_SECONDS = 60.0
# Writes per pass stop after this long; the rest waits for the next poll, which reads Sim's
# fingerprint first (73 ms at 100,000 users): a delete or a tier change waits one slice at most.
WRITE_SLICE_SECONDS = 5.0
# Events about plans no tier claims, per reading of Sim (a switch-on may find thousands at once).
_EVENT_SLICE_SECONDS = 1.0
# Sim's personal save replaces the whole environment object; the key it may drop.
GLOBAL_ENV_VAR = "GLOBAL_DB_URL"
# Sim stamps updated_at with its transaction's start: one that commits later than a newer one
# would hide behind the watermark without this overlap.
_ENV_WATERMARK_OVERLAP = dt.timedelta(seconds=10)


class SimTables(Protocol):
    async def sim_fingerprint(self) -> Fingerprint: ...

    async def sim_new_rows(
        self, *, users_after: datetime | None, workspaces_after: datetime | None
    ) -> tuple[Fingerprint, SimSnapshot, int, int]: ...

    async def sim_snapshot(self) -> tuple[Fingerprint, SimSnapshot]: ...

    async def restore_user_env_var(
        self, *, key: str, since: datetime | None
    ) -> tuple[int, datetime | None]: ...


class SyncResources(Protocol):
    async def list(self, *, plural: str, namespace: str) -> list[dict[str, Any]]: ...

    async def get(self, *, plural: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def create(self, *, plural: str, namespace: str, body: Mapping[str, Any]) -> bool: ...

    async def patch(self, *, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> None: ...

    async def delete(self, *, plural: str, namespace: str, name: str) -> None: ...


@dataclass(slots=True)
class PassResult:
    full: bool
    created: int = 0
    patched: int = 0
    deleted: int = 0
    yielded: int = 0
    restored: int = 0
    left: int = 0  # the backlog after the pass


def owned_namespaces(settings: Settings) -> list[str]:
    """The Sim sync's namespaces this process watches (kopf's names and globs, ``!`` negating):
    an operator shard writes only there, so one shard's outage touches no other's tenants."""
    watched = settings.namespaces
    if not watched:
        return settings.sim_sync_namespaces()
    positive = [p for p in watched if not p.startswith("!")]
    negative = [p[1:] for p in watched if p.startswith("!")]

    def watches(namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, p) for p in positive) and not any(
            fnmatch.fnmatchcase(namespace, p) for p in negative
        )

    return [namespace for namespace in settings.sim_sync_namespaces() if watches(namespace)]


class SimSync:
    """Keep the resources in the Sim sync's namespaces (``settings.sim_sync_namespaces()``) in
    line with Sim's tables: every one is listed, only this process's own are written."""

    def __init__(
        self,
        *,
        settings: Settings,
        tables: SimTables,
        resources: SyncResources,
        post_event: PostEvent,
        clock: Callable[[], float] = time.monotonic,
        plan_tiers: Callable[[], Mapping[str, str]] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """``plan_tiers``: Sim plan (glob) -> tier name, asked at every plan of the resources
        (default: ``TENANTDB_SIM_PLAN_TIERS``)."""
        self._settings = settings
        self._tables = tables
        self._resources = resources
        self._post_event = post_event
        self._metrics = metrics or Metrics()
        self._clock = clock
        self._bucket = TokenBucket(settings.sim_writes_per_second, clock=clock)
        self._namespaces = settings.sim_sync_namespaces()
        self._owned = frozenset(owned_namespaces(settings))
        settings_plan_tiers = settings.plan_tiers()
        self._plan_tiers = plan_tiers or (lambda: settings_plan_tiers)
        self._unclaimed = UnclaimedPlans(self._metrics, post_event, lambda: self._bucket.take())
        self._cluster: dict[TenantKey, list[ClusterResource]] | None = None
        self._fingerprint: Fingerprint | None = None
        self._backlog: Backlog | None = None
        self._last_full = float("-inf")
        self._told: set[tuple[str, str]] = set()  # (kind, name) already told it is not ours
        self._told_rows: set[TenantKey] = set()  # tenants already told their row's project id is bad
        self._own_databases: dict[str, int] | None = None  # by kind, as last said
        self._env_since: datetime | None = None
        self._doing = "starting"  # what the pass is doing: said when it times out

    def forget(self) -> None:
        """Drop every cache: the next pass is a full one."""
        self._cluster = None
        self._fingerprint = None
        self._backlog = None
        self._env_since = None

    @property
    def backlog(self) -> int:
        """Writes (and events) planned and not made yet; 0 when caught up with Sim."""
        return len(self._backlog) if self._backlog is not None else 0

    # -- one pass ------------------------------------------------------------------------------
    async def run_once(self) -> PassResult | None:
        """One poll: nothing when Sim did not change, no full pass is due and nothing is left to
        do; new rows only when only rows were added; else a snapshot of Sim and a plan against
        the cluster. Then one slice of the backlog."""
        full = (
            self._cluster is None
            or self._clock() - self._last_full >= self._settings.sim_full_sync_interval_seconds
        )
        self._doing = "reading the fingerprint of Sim's tables"
        fingerprint = await self._tables.sim_fingerprint()
        before = self._fingerprint
        if not full and fingerprint == before:
            if not self.backlog:
                return None
            result = PassResult(full=False)
            await self._work_off(result)
            return result
        logger.debug(
            "Sim sync: Sim changed (%s -> %s)%s", before, fingerprint, " (full pass due)" if full else ""
        )
        result = PassResult(full=full)
        if full or before is None or fingerprint.environment_updated != before.environment_updated:
            # A personal save in Sim (environment.updated_at moved): put GLOBAL_DB_URL back now,
            # from the metadata DB alone, rather than at the resource's next resync.
            self._doing = f"restoring {GLOBAL_ENV_VAR} in Sim's environment rows"
            result.restored, watermark = await self._tables.restore_user_env_var(
                key=GLOBAL_ENV_VAR, since=self._env_since
            )
            if watermark is not None:
                self._env_since = watermark - _ENV_WATERMARK_OVERLAP
        if not full and before is not None and self._backlog is not None:
            handled = await self._only_new_rows(fingerprint, before)
            if handled is not None:
                seen, desired, plan = handled
                logger.debug("Sim sync: only new rows (%d to create)", len(plan.create))
                self._backlog.put_first(plan)
                await self._work_off(result)
                await self._tell_unclaimed(desired, complete=False)
                self._fingerprint = seen
                return result
        # The fingerprint read with the snapshot, in its transaction, is the one remembered.
        self._doing = "reading a snapshot of Sim's tables"
        fingerprint, snapshot = await self._tables.sim_snapshot()
        if full or self._cluster is None:
            self._doing = f"listing namespaces {','.join(self._namespaces)}"
            self._cluster = await self._list_cluster()
            self._report_resources()
            self._last_full = self._clock()
        self._doing = "planning"
        desired = self._desired(snapshot)
        alone = left_alone(snapshot)
        self._say_left_alone(alone)
        plan = make_plan(
            desired,
            self._cluster,
            archived_workspace_ids=snapshot.archived_workspace_ids,
            archived_deletion_policy=self._settings.sim_archived_workspace_deletion_policy,
            leave_alone=alone,
            owned=self._owned,
        )
        self._backlog = Backlog.from_plan(plan, previous=self._backlog)
        logger.debug(
            "Sim sync plan (%s): %d users, %d live workspaces; %d to create, %d to patch, %d to delete",
            "full" if full else "changed",
            len(snapshot.user_ids),
            len(snapshot.workspaces),
            len(plan.create),
            len(plan.patch),
            len(plan.delete),
        )
        await self._work_off(result)
        await self._tell_unclaimed(desired, complete=True)
        # Remembered once planned: what is not done yet is the backlog, kept with it (a failed
        # pass forgets both, and the next poll plans afresh).
        self._fingerprint = fingerprint
        return result

    async def _only_new_rows(
        self, now: Fingerprint, before: Fingerprint
    ) -> tuple[Fingerprint, dict[TenantKey, DesiredResource], SyncPlan] | None:
        """The cheap path of a registration: when the change is new users and workspaces and
        nothing else, plan their resources from those rows alone. None when anything else may
        have changed (a delete, an archive, a plan, a late commit whose ``created_at`` is older
        than the last one seen): then the caller takes the full path. Returns the fingerprint
        read with the new rows (to remember), what they want, and the plan."""
        if not self._inserts_only(now, before):
            return None
        self._doing = "reading Sim's new rows"
        now, new, users_found, workspaces_found = await self._tables.sim_new_rows(
            users_after=before.users_created, workspaces_after=before.workspaces_created
        )
        # Checked again against the fingerprint read with the rows, in their transaction.
        if not self._inserts_only(now, before):
            return None
        if (users_found, workspaces_found) != (now.users - before.users, now.workspaces - before.workspaces):
            return None
        if new.archived_workspace_ids or now.payers_changed(before, new):
            return None
        assert self._cluster is not None
        desired = self._desired(new)
        plan = make_plan(
            desired,
            self._cluster,
            archived_workspace_ids=set(),
            archived_deletion_policy=self._settings.sim_archived_workspace_deletion_policy,
            delete_absent=False,
            owned=self._owned,
        )
        return now, desired, plan

    async def _tell_unclaimed(self, desired: dict[TenantKey, DesiredResource], *, complete: bool) -> None:
        """Warn about users on a plan no tier claims, for ``_EVENT_SLICE_SECONDS`` at most (the
        rest at the next reading of Sim): their events wait behind no backlog, nor hold one up."""
        deadline = self._clock() + _EVENT_SLICE_SECONDS
        self._doing = "telling budgets of Sim plans no tier claims"
        await self._unclaimed.tell(
            self._own(desired), complete=complete, until=lambda: self._clock() < deadline
        )

    def _desired(self, snapshot: SimSnapshot) -> dict[TenantKey, DesiredResource]:
        return desired_resources(
            snapshot,
            plan_tiers=self._plan_tiers(),
            default_tier=str(self._settings.default_tier),
            namespaces=self._namespaces,
        )

    def _own(self, desired: Mapping[TenantKey, DesiredResource]) -> list[DesiredResource]:
        """The desired resources this process answers for (its shard's namespaces)."""
        return [want for want in desired.values() if want.namespace in self._owned]

    @staticmethod
    def _inserts_only(now: Fingerprint, before: Fingerprint) -> bool:
        return not (
            now.changes_besides_inserts(before)
            or now.workspaces_archived != before.workspaces_archived
            or now.users < before.users
            or now.workspaces < before.workspaces
        )

    # -- the backlog, a slice at a time -----------------------------------------------------------
    async def _work_off(self, result: PassResult) -> None:
        """Write for at most ``WRITE_SLICE_SECONDS`` (one write at least): deletes, patches,
        events, then creates."""
        backlog = self._backlog
        assert backlog is not None
        deadline = self._clock() + WRITE_SLICE_SECONDS
        self._report_backlog(backlog)

        def in_slice() -> bool:
            return self._clock() < deadline

        try:
            while backlog.deletes and in_slice():
                resource, policy = backlog.deletes[0]
                await self._delete(resource, policy)
                backlog.deletes.popleft()
                self._metrics.sim_sync_backlog.labels(action=Action.DELETE).dec()
                result.deleted += 1
            while backlog.patches and in_slice():
                resource, patch = backlog.patches[0]
                self._doing = f"patching {resource.kind} {resource.name}"
                await self._bucket.take()
                await self._resources.patch(
                    plural=resource.plural,
                    namespace=resource.namespace,
                    name=resource.name,
                    patch={"spec": patch},
                )
                self._replace(resource, {**resource.spec, **patch})
                self._metrics.sim_sync_writes.labels(action=Action.PATCH).inc()
                backlog.patches.popleft()
                self._metrics.sim_sync_backlog.labels(action=Action.PATCH).dec()
                result.patched += 1
            while backlog.yielded and in_slice():
                await self._yield(backlog.yielded[0], result)
                backlog.yielded.popleft()
            while backlog.creates and in_slice():
                await self._create(backlog.creates[0], result)
                backlog.creates.popleft()
                self._metrics.sim_sync_backlog.labels(action=Action.CREATE).dec()
        except BaseException:
            # Something unknown happened half-way: the next pass lists the cluster afresh.
            self.forget()
            raise
        result.left = len(backlog)
        self._report_backlog(backlog)

    async def _delete(self, resource: ClusterResource, policy: str | None) -> None:
        self._doing = f"deleting {resource.kind} {resource.name}"
        if policy is not None:
            await self._bucket.take()
            await self._resources.patch(
                plural=resource.plural,
                namespace=resource.namespace,
                name=resource.name,
                patch={"spec": {"deletionPolicy": policy}},
            )
        await self._bucket.take()
        await self._resources.delete(plural=resource.plural, namespace=resource.namespace, name=resource.name)
        self._drop(resource)
        self._metrics.sim_sync_writes.labels(action=Action.DELETE).inc()

    def _say_left_alone(self, alone: Mapping[TenantKey, NotCreated]) -> None:
        """Say, once, which tenants get no database resource: the count of databases users
        brought (again when it changes; also a metric), each row whose project id is bad."""
        counts = {kind.kind: 0 for kind in (GLOBAL_DATABASE, WORKSPACE_DATABASE)}
        for (kind, sim_id), why in alone.items():
            if why is NotCreated.OWN_DATABASE:
                counts[kind] += 1
            elif (kind, sim_id) not in self._told_rows:
                self._told_rows.add((kind, sim_id))
                logger.warning(
                    "Sim sync: no %s made for Sim id %s: its metadata row is the platform's but its "
                    "neon_project_id is no project id the CRD accepts; made anyway, it would create a "
                    "second project and meet that row (see tenantdb adopt --dry-run)",
                    kind,
                    sim_id,
                )
        for kind, count in counts.items():
            self._metrics.sim_sync_own_databases.labels(kind=kind).set(count)
        if counts == self._own_databases:
            return
        self._own_databases = counts
        if any(counts.values()):
            logger.info(
                "Sim sync: %d users and %d workspaces have a database of their own (ownership_type "
                "not 'platform' in user_global_database / workspace_database): the sync makes no "
                "database resource for them, and deletes none it made while they are in Sim",
                counts[GLOBAL_DATABASE.kind],
                counts[WORKSPACE_DATABASE.kind],
            )

    def _report_backlog(self, backlog: Backlog) -> None:
        for action, count in backlog.writes_left().items():
            self._metrics.sim_sync_backlog.labels(action=action).set(count)

    def _report_resources(self) -> None:
        """Count the sync's own resources in a fresh listing (then kept up by each write)."""
        if self._cluster is None:
            return
        ours = {kind.kind: 0 for kind in KINDS}
        for present in self._cluster.values():
            for resource in present:
                if resource.ours:
                    ours[resource.kind] += 1
        for kind, count in ours.items():
            self._metrics.sim_sync_resources.labels(kind=kind).set(count)

    async def _list_cluster(self) -> dict[TenantKey, list[ClusterResource]]:
        # Every shard namespace, not only this process's own: a tenant whose resources stand
        # in another shard's namespace (placed before the list changed) is not made twice.
        listing: list[tuple[str, Mapping[str, Any]]] = []
        for namespace in self._namespaces:
            for kind in KINDS:
                for obj in await self._resources.list(plural=kind.plural, namespace=namespace):
                    metadata = {"namespace": namespace, **(obj.get("metadata") or {})}
                    listing.append((kind.kind, {**obj, "metadata": metadata}))
        return index_cluster(listing)

    def _body(self, want: DesiredResource) -> dict[str, Any]:
        return manifest(want, want.namespace)

    async def _create(self, want: DesiredResource, result: PassResult) -> None:
        self._doing = f"creating {want.kind} {want.name}"
        await self._bucket.take()
        body = self._body(want)
        if await self._resources.create(plural=want.plural, namespace=want.namespace, body=body):
            self._add(want.kind, body)
            self._metrics.sim_sync_writes.labels(action=Action.CREATE).inc()
            result.created += 1
            return
        # The name is taken: by our own object (a cache older than the cluster) or by another.
        existing = await self._resources.get(plural=want.plural, namespace=want.namespace, name=want.name)
        if existing is None:
            self.forget()  # deleted in between: the next pass looks again
            return
        resource = self._add(want.kind, existing)
        if resource is not None and not resource.ours:
            await self._yield(resource, result)

    async def _yield(self, resource: ClusterResource, result: PassResult) -> None:
        result.yielded += 1
        if (resource.kind, resource.name) in self._told:
            return
        self._doing = f"telling {resource.kind} {resource.name} it is not the sync's"
        await self._bucket.take()
        await self._post_event(
            resource.kind,
            resource.name,
            Reason.NOT_MANAGED_BY_SIM_SYNC,
            f"Not made by the Sim sync (no {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} label): the sync "
            f"leaves this {resource.kind} alone and makes none of its own for Sim id {resource.sim_id}",
            namespace=resource.namespace,
        )
        self._told.add((resource.kind, resource.name))

    def _add(self, kind: str, obj: Mapping[str, Any]) -> ClusterResource | None:
        resource = cluster_resource(kind, obj)
        if resource is not None and self._cluster is not None:
            before = self._cluster.get(resource.key, [])
            present = [r for r in before if not _same(r, resource)]
            self._cluster[resource.key] = [*present, resource]
            self._count_ours(resource.kind, [resource], minus=[r for r in before if _same(r, resource)])
        return resource

    def _drop(self, resource: ClusterResource) -> None:
        if self._cluster is None:
            return
        before = self._cluster.get(resource.key, [])
        present = [r for r in before if not _same(r, resource)]
        if present:
            self._cluster[resource.key] = present
        else:
            self._cluster.pop(resource.key, None)
        self._count_ours(resource.kind, [], minus=[r for r in before if _same(r, resource)])

    def _count_ours(self, kind: str, plus: list[ClusterResource], *, minus: list[ClusterResource]) -> None:
        """Keep ``tenantdb_sim_sync_resources`` in step with the cache, write by write."""
        delta = sum(r.ours for r in plus) - sum(r.ours for r in minus)
        if delta:
            self._metrics.sim_sync_resources.labels(kind=kind).inc(delta)

    def _replace(self, resource: ClusterResource, spec: Mapping[str, Any]) -> None:
        if self._cluster is None:
            return
        updated = ClusterResource(
            resource.kind,
            resource.namespace,
            resource.name,
            resource.sim_id,
            resource.ours,
            resource.deleting,
            spec,
        )
        self._cluster[resource.key] = [
            updated if _same(r, resource) else r for r in self._cluster.get(resource.key, [])
        ]

    # -- forever -------------------------------------------------------------------------------
    async def run_pass(self) -> None:
        """One pass that survives every outage: failures are logged, the caches dropped."""
        try:
            # A call that never answers (a stuck connection) must not stop the loop.
            async with asyncio.timeout(PASS_TIMEOUT_SECONDS):
                result = await self.run_once()
        except (StoreError, KubeError, TimeoutError) as exc:
            if isinstance(exc, (StoreError, KubeError)):
                reason = f"{str(exc) or type(exc).__name__} (while {self._doing})"
            else:  # the pass's own timeout: its message is empty
                reason = f"no answer within {PASS_TIMEOUT_SECONDS:g} s while {self._doing}"
            logger.warning("Sim sync pass failed, retrying: %s", reason)
            self.forget()
            await asyncio.sleep(_FAILURE_PAUSE_SECONDS)  # no busy retries during an outage
            return
        except Exception:
            logger.exception("Sim sync pass failed unexpectedly, retrying")
            self.forget()
            await asyncio.sleep(_FAILURE_PAUSE_SECONDS)
            return
        if result is not None and (result.created or result.patched or result.deleted or result.restored):
            logger.info(
                "Sim sync (%s pass): %d created, %d patched, %d deleted, %d left to others, "
                "%s restored in %d environment rows; %d writes left",
                "full" if result.full else "changed",
                result.created,
                result.patched,
                result.deleted,
                result.yielded,
                GLOBAL_ENV_VAR,
                result.restored,
                result.left,
            )

    async def run_forever(self, *, is_active: Callable[[], bool]) -> None:
        """Poll every ``sim_poll_interval_seconds`` while ``is_active()`` (benchmarks, tools).

        The operator runs ``run_pass`` through its peering gate instead (handlers/sim_sync.py).
        """
        interval = self._settings.sim_poll_interval_seconds
        while True:
            started = self._clock()
            if not is_active():
                self.forget()
            else:
                await self.run_pass()
            await asyncio.sleep(max(0.0, interval - (self._clock() - started)))


def _same(a: ClusterResource, b: ClusterResource) -> bool:
    return (a.namespace, a.name) == (b.namespace, b.name)

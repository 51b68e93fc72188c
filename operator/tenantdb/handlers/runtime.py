"""What every handler shares: clients built once at start-up, kept in kopf's memo."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING, Protocol

from tenantdb.api import DATABASE_BUDGET, DATABASE_TIER, Kind
from tenantdb.api.organization import NeonOrganizationSpec
from tenantdb.config import Settings
from tenantdb.crypto import KeyRing
from tenantdb.handlers.background import ActiveGate
from tenantdb.handlers.kube_login import kube_credentials
from tenantdb.kube import KubeClient, KubeError
from tenantdb.kube.resources import CustomResources
from tenantdb.metrics import Metrics
from tenantdb.neon import NeonClient
from tenantdb.reconcile.budget_resume import BudgetResumeSnapshot
from tenantdb.reconcile.budget_sync import BudgetSync
from tenantdb.reconcile.database import DatabaseDeps, RotationRecord
from tenantdb.reconcile.fleet import FleetRegistry
from tenantdb.reconcile.organizations import OrganizationPool
from tenantdb.reconcile.organizations.clients import organization_client
from tenantdb.reconcile.tier_rollout import RolloutQueue
from tenantdb.reconcile.tiers import tier_definition
from tenantdb.store import MetadataStore, StoreError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # the transport seam for tests; httpx itself stays in tenantdb.neon
    import httpx


__all__ = ["NewResources", "Runtime"]


class NewResources(Protocol):
    """What kopf's handlers ask the fast lane (``handlers.fast_lane.FastLane``)."""

    async def kopf_reached(self, kind: Kind, uid: str, generation: int, *, listing: bool) -> bool: ...


@dataclasses.dataclass
class Runtime:
    """Built by ``operate()``; the clients are opened in kopf's start-up handler."""

    settings: Settings
    cipher: KeyRing
    metrics: Metrics
    kube_url: str | None = None
    neon_transport: httpx.AsyncBaseTransport | None = None
    neon: NeonClient | None = None
    store: MetadataStore | None = None
    kube: KubeClient | None = None
    # One reconcile of an object at a time (change handlers and the fleet observation share it).
    locks: collections.defaultdict[str, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    # The project of each resource, as soon as this process knows it: a reconcile that kopf
    # starts with a body from before the status write (the fleet observation, right after a create)
    # then neither searches Neon for the project nor reports adopting its own.
    projects: dict[str, str] = dataclasses.field(default_factory=dict)
    # Resources whose create this process has sent and not yet seen recorded.
    create_attempts: set[str] = dataclasses.field(default_factory=set)
    # Tenant claims this process saw pinned to a project (see DatabaseDeps.pinned_claims).
    pinned_claims: dict[str, str] = dataclasses.field(default_factory=dict)
    # When each unrecorded create was sent (status.createAttemptedAt is the durable copy).
    create_sent_at: dict[str, datetime.datetime] = dataclasses.field(default_factory=dict)
    # The password rotations this process finished (see DatabaseDeps.rotations).
    rotations: dict[str, RotationRecord] = dataclasses.field(default_factory=dict)
    budget_sync: BudgetSync | None = None
    # What the handlers tell the tiers' rollout (handlers/tier_rollout.py): a tier or a user's
    # tier changed.
    tier_rollout: RolloutQueue = dataclasses.field(default_factory=RolloutQueue)
    # The NeonOrganization pool (reconcile/organizations): empty when none is defined, and
    # then every tenant is in the implicit organisation of NEON_API_KEY / NEON_ORG_ID (``neon``).
    organizations: OrganizationPool[NeonClient] | None = None
    # Neon project id -> its NeonOrganization (absent: the implicit organisation), from each
    # resource's status.organization: which key the budget path and the fleet use for it.
    project_organizations: dict[str, str] = dataclasses.field(default_factory=dict)
    # This replica's name in kopf's peering (passed to kopf, read back by the ActiveGate).
    identity: str = dataclasses.field(
        default_factory=lambda: os.environ.get("POD_ID") or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    )
    gate: ActiveGate | None = None
    # Every settled database resource, for the fleet observation (see reconcile/fleet.py).
    fleet: FleetRegistry = dataclasses.field(default_factory=FleetRegistry)
    # New resources taken at once while kopf resumes the fleet (handlers/fast_lane.py): kopf's
    # handlers ask it what it took. Its life (and every other loop's) is handlers/loops.py's.
    fast_lane: NewResources | None = None
    # The budget rows and claims as the metadata DB held them at the start: a resume that finds
    # its own there writes nothing (see reconcile/budget_resume.py).
    budget_resume: BudgetResumeSnapshot = dataclasses.field(default_factory=BudgetResumeSnapshot)
    # Resumes that must reach the metadata DB take at most half its pool: a restart's thousands
    # of them wait here, not in the pool's queue, where a new signup's statements would wait
    # behind them (and time out).
    resume_lane: asyncio.Semaphore = dataclasses.field(init=False)
    # Reconciles that rotate a password take at most half the metadata DB's pool too: a whole
    # fleet annotated at once (a leak) would otherwise take every connection, and a rotation
    # whose publish then times out after Neon reset the password must reset it again.
    rotation_lane: asyncio.Semaphore = dataclasses.field(init=False)

    def __copy__(self) -> Runtime:
        # kopf copies the memo for every object it meets (a namespace per object, for handlers
        # that keep per-object state on it); ours is the one set of clients every handler
        # shares, and 30,000 copies of it were 14 MB for nothing.
        return self

    def __post_init__(self) -> None:
        # Read from the registry at each scrape: no copy of its size to keep in step.
        self.metrics.fleet_resources.set_function(lambda: len(self.fleet))
        self.metrics.replica_active.set_function(
            lambda: 1.0 if self.gate is not None and self.gate.last_answer else 0.0
        )
        self.resume_lane = asyncio.Semaphore(max(1, self.settings.metadata_pool_max_size // 2))
        self.rotation_lane = asyncio.Semaphore(max(1, self.settings.metadata_pool_max_size // 2))
        if self.budget_sync is None:
            self.budget_sync = BudgetSync(settings=self.settings, metrics=self.metrics)

    @property
    def budgets(self) -> BudgetSync:
        assert self.budget_sync is not None
        return self.budget_sync

    async def open_kube(self) -> None:
        """The Kubernetes client and the replica's gate: opened first, so the start-up fast lane
        watches while the rest opens (once per process)."""
        if self.kube is not None:
            return
        self.kube = await KubeClient.connect(host=self.kube_url, login=kube_credentials)
        self.gate = ActiveGate(
            identity=self.identity,
            priority=self.settings.peering_priority,
            peering_name=self.settings.peering_name,
            namespaces=self.settings.namespaces,
            reader=self.kube,
        )

    async def open(self) -> None:
        await self.open_kube()
        neon = NeonClient.from_settings(self.settings, metrics=self.metrics, transport=self.neon_transport)
        try:
            # A wrong key or organisation is said once, clearly, at start-up: not as the
            # first create of every resource failing.
            check = await neon.validate()
        except BaseException:
            await neon.aclose()
            raise
        logger.info("Neon API key checked: %s of organisation %s", check.auth_method, check.org_id)
        self.neon = neon
        self.store = await MetadataStore.open(
            self.settings.metadata_database_url.get_secret_value(),
            cipher=self.cipher,
            standalone_env_tables=self.settings.standalone_env_tables,
            max_size=self.settings.metadata_pool_max_size,
        )
        await self.store.migrate()
        # Neither Sim's env var tables nor the standalone setting: stop now, saying what to do.
        await self.store.check_env_tables()
        # The budget's word on each user, as the last process left it, before any handler may
        # enable an endpoint (kopf runs the resource handlers only after start-up).
        await self.budgets.restore(self.store)
        # The pool as it stands, before any handler places a tenant (then once a minute: loops).
        assert self.kube is not None
        self.organizations = self._organization_pool(self.kube, self.store)
        await self.refresh_organizations()
        # And the tiers, before any budget is planned or database created (the fast lane takes
        # signups before kopf's watch of the tiers has listed them): a budget planned with the
        # settings' tiers while the cluster's differ could suspend a paying user.
        await self.load_tiers()

    async def load_tiers(self) -> None:
        """Every DatabaseTier, listed once (kopf's watch keeps them current after)."""
        assert self.kube is not None
        try:
            objects = await CustomResources(self.kube).list(plural=DATABASE_TIER.plural, namespace=None)
        except KubeError as exc:
            if exc.status != 404:
                raise
            # The kind is not installed (CRDs not upgraded yet): the settings' three tiers.
            logger.warning(
                "DatabaseTier is not installed: the tiers are the settings' free, paid, enterprise"
            )
            objects = []
        definitions = []
        for obj in objects:
            definition = tier_definition(obj)
            if definition is not None:
                definitions.append(definition)
        self.budgets.tiers.replace_all(definitions)
        logger.info("tiers: %s", ", ".join(sorted(self.budgets.policy.tiers)) or "none")

    def _organization_pool(self, kube: KubeClient, store: MetadataStore) -> OrganizationPool[NeonClient]:
        def make_client(spec: NeonOrganizationSpec, api_key: str) -> NeonClient:
            return organization_client(
                spec, api_key, settings=self.settings, metrics=self.metrics, transport=self.neon_transport
            )

        return OrganizationPool(
            source=kube, count_tenants=store.tenants_per_organization, make_client=make_client
        )

    async def refresh_organizations(self) -> None:
        """Read the NeonOrganization objects, check their keys, write their status. An outage
        leaves the pool as it was (the last word stands until the next refresh)."""
        if self.organizations is None:
            return
        try:
            await self.organizations.refresh()
        except (KubeError, StoreError) as exc:
            logger.warning("could not refresh the NeonOrganization pool: %s", exc)

    def client_of(self, organization: str | None) -> NeonClient | None:
        """The Neon client of a tenant's organisation (None: the implicit one, ``neon``)."""
        if organization is None:
            return self.neon
        return self.organizations.client(organization) if self.organizations is not None else None

    async def read_budget_resume_snapshot(self) -> None:
        """The budget rows and claims, for kopf's resumes of the budgets (before they start:
        kopf runs the resource handlers only after its start-up handlers)."""
        assert self.store is not None
        try:
            await self.budget_resume.load(self.store, kind=DATABASE_BUDGET.kind)
        except StoreError as exc:  # the resumes then ask the metadata DB one by one
            logger.warning("could not read the budget rows for the resumes: %s", exc)

    async def close(self) -> None:
        """The clients (the loops that use them were stopped first: ``Loops.close``)."""
        # Each once: a start that fails for good closes what it opened, and kopf may too.
        neon, store, kube, pool = self.neon, self.store, self.kube, self.organizations
        self.neon = self.store = self.kube = None
        self.organizations = None
        if pool is not None:
            await pool.close()
        if neon is not None:
            await neon.aclose()
        if store is not None:
            await store.close()
        if kube is not None:
            await kube.close()

    def database_deps(self, neon: NeonClient | None = None) -> DatabaseDeps:
        """``neon``: the client of the resource's organisation (default: the implicit one)."""
        assert self.neon is not None
        assert self.store is not None
        assert self.kube is not None
        return DatabaseDeps(
            neon=neon or self.neon,
            secrets=self.kube,
            metadata=self.store,
            cipher=self.cipher,
            settings=self.settings,
            clock=lambda: datetime.datetime.now(datetime.UTC),
            is_suspended=self.budgets.is_suspended,
            user_tier=self.budgets.user_tier,
            known_projects=self.projects,
            create_attempts=self.create_attempts,
            pinned_claims=self.pinned_claims,
            create_sent_at=self.create_sent_at,
            rotations=self.rotations,
        )

"""``NeonEmulator``: the Neon API v2 over HTTP, every project a real PostgreSQL database.

Physical and logical names
--------------------------
One PostgreSQL server holds every project, yet each project wants its own ``neondb``
owned by ``neondb_owner``. So each project's database and role get a physical name on the
server made of the logical name and the project id's digits (project
``wandering-fog-12345678``: database ``neondb_12345678``, role ``neondb_owner_12345678``).
The API shows the logical names wherever Neon shows names (``roles``, ``databases``,
``owner_name``), and the physical ones wherever a client connects (``connection_uris``:
``connection_uri`` and ``connection_parameters.database``/``role``; ``GET
.../connection_uri``), so every URI the emulator hands out really connects.
``GET .../connection_uri`` accepts either form of the names.

Usage::

    async with NeonEmulator(postgres_admin_url=server.admin_url) as neon:
        client = httpx.AsyncClient(base_url=neon.base_url,
                                   headers={"Authorization": f"Bearer {neon.api_key}"})
        neon.options.error_rate = 0.1    # any option may change while it runs
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from types import TracebackType
from typing import Any, NamedTuple

from aiohttp import web

from tenantdb.testing.neon.app import build_app
from tenantdb.testing.neon.backing import PostgresBacking
from tenantdb.testing.neon.calls import CallRecord
from tenantdb.testing.neon.clock import utcnow
from tenantdb.testing.neon.model import Project
from tenantdb.testing.neon.options import CONSUMPTION_METRICS, EmulatorOptions, OrganizationOptions
from tenantdb.testing.neon.quota import apply_quota_stop, over_compute_quota
from tenantdb.testing.neon.routing import API_PREFIX
from tenantdb.testing.neon.state import EmulatorState
from tenantdb.testing.neon.uris import ServerAddress
from tenantdb.testing.neon.views import project_list_item, project_view

__all__ = ["NeonEmulator", "PhysicalNames"]

logger = logging.getLogger(__name__)

_SHUTDOWN_SECONDS = 5.0


class PhysicalNames(NamedTuple):
    """The names of a project's database and role on the PostgreSQL server."""

    database: str
    role: str


class NeonEmulator:
    """Serve the Neon API v2 on a local port; ``start``/``stop`` or ``async with``."""

    def __init__(
        self, *, postgres_admin_url: str, options: EmulatorOptions | None = None, ssl: bool | None = None
    ) -> None:
        """``ssl``: whether handed-out URIs say ``sslmode=require``; by default as the admin URI does."""
        self._state = EmulatorState(
            options=options or EmulatorOptions(),
            address=ServerAddress.from_admin_url(postgres_admin_url, ssl=ssl),
            backing=PostgresBacking(postgres_admin_url),
        )
        self._runner: web.AppRunner | None = None
        self._quota_tasks: set[asyncio.Task[None]] = set()
        self.base_url = ""

    # -- options -----------------------------------------------------------------------------
    @property
    def options(self) -> EmulatorOptions:
        return self._state.options

    @options.setter
    def options(self, value: EmulatorOptions) -> None:
        self._state.options = value

    @property
    def api_key(self) -> str:
        return self._state.options.api_key

    @property
    def org_id(self) -> str:
        return self._state.options.org_id

    def add_organization(
        self,
        org_id: str,
        *,
        api_key: str | None = None,
        rate_limit_per_minute: int | None = None,
        max_projects: int | None = None,
    ) -> OrganizationOptions:
        """Serve one more organisation with its own key (by default ``<org_id>-key``) and limits."""
        organization = OrganizationOptions(
            org_id=org_id,
            api_key=api_key or f"{org_id}-key",
            rate_limit_per_minute=rate_limit_per_minute,
            max_projects=max_projects,
        )
        self._state.options.organizations.append(organization)
        return organization

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Open the PostgreSQL pool and listen; returns the base URL (``.../api/v2``)."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        await self._state.backing.open()
        runner = web.AppRunner(
            build_app(self._state), access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_SECONDS
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._state.backing.close()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.base_url = f"http://{url_host}:{bound_port}{API_PREFIX}"
        logger.info("Neon API emulator serving at %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Stop serving, then drop every database and role the emulator made."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        await runner.cleanup()
        if self._state.inflight:  # creates whose clients left: let them land, then drop them too
            await asyncio.wait(set(self._state.inflight), timeout=_SHUTDOWN_SECONDS)
        effects = list(self._state.effects)  # password resets not yet taken hold: moot now
        for task in effects:
            task.cancel()
        await asyncio.gather(*effects, return_exceptions=True)
        registry, backing = self._state.registry, self._state.backing
        now = utcnow()
        leftovers = []
        for project in [*registry.live(), *registry.deleted()]:  # deleted ones are kept for recovery
            leftovers.append((project.database.physical, project.role.physical))
            project.deleted_at = project.deleted_at or now  # its database is about to go
            project.purged = True
        leftovers += [*registry.pending.values(), *registry.abandoned]  # creates cut short
        try:
            for database, role in leftovers:
                await backing.drop(database=database, role=role)
        finally:
            await backing.close()

    async def __aenter__(self) -> NeonEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- inspection and set-up for tests -----------------------------------------------------
    def projects(self, org_id: str | None = None) -> list[dict[str, Any]]:
        """Live projects (of every organisation, or of ``org_id``), newest first, as
        ``GET /projects/{id}`` shows them."""
        now = utcnow()
        return [
            project_view(p, self._state.address, now)
            for p in self._state.registry.live()
            if org_id is None or p.org_id == org_id
        ]

    def deleted_projects(self) -> list[dict[str, Any]]:
        """Deleted projects, newest first, as ``GET /projects?recoverable=true`` lists them."""
        window = datetime.timedelta(seconds=self._state.options.recovery_window_seconds)
        return [project_list_item(p, self._state.address, window) for p in self._state.registry.deleted()]

    async def creates_landed(self, timeout: float = 60.0) -> None:
        """Wait for every create carried out on its own (its client may be gone) to land."""
        if self._state.inflight:
            await asyncio.wait(set(self._state.inflight), timeout=timeout)

    async def backing_exists(self, project_id: str) -> tuple[bool, bool]:
        """Whether a project's database and role still exist on the server (leak checks)."""
        names = self.physical_names(project_id)
        return await self._state.backing.exists(database=names.database, role=names.role)

    def physical_names(self, project_id: str) -> PhysicalNames:
        """The real database and role of a project (live or deleted) on the server."""
        project = self._state.registry.get(project_id)
        if project is None:
            raise KeyError(project_id)
        return PhysicalNames(project.database.physical, project.role.physical)

    def seed(self, value: int) -> None:
        """Make the latency and fault draws reproducible from here on."""
        self._state.random.seed(value)

    def calls(self) -> list[CallRecord]:
        """Every request served so far, in arrival order."""
        return self._state.calls.snapshot()

    def reset_calls(self) -> None:
        """Forget the calls so far (the rate-limit windows are left alone)."""
        self._state.calls.clear()

    def set_usage(self, project_id: str, **metrics: int) -> None:
        """Set a project's consumption in the current billing period, e.g. ``compute_unit_seconds=36000``.

        Metrics not named keep their values; names are the consumption API's metric names.
        """
        project = self._state.registry.get(project_id)
        if project is None:
            raise KeyError(project_id)
        for name, value in metrics.items():
            if name not in CONSUMPTION_METRICS:
                raise ValueError(f"unknown metric {name!r}; known: {', '.join(CONSUMPTION_METRICS)}")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
        project.usage.update(metrics)
        # Passing (or no longer passing) its compute quota stops (or restarts) its computes.
        if over_compute_quota(project.settings, project.usage) != project.quota_stopped:
            self._quota_tasks.add(asyncio.get_running_loop().create_task(self._apply_quota(project)))

    async def _apply_quota(self, project: Project) -> None:
        async with self._state.registry.lock(project.id):
            await apply_quota_stop(project, self._state.backing)

    async def settled(self) -> None:
        """Wait until the effects of ``set_usage`` (a quota's hard stop) have been applied."""
        while self._quota_tasks:
            await self._quota_tasks.pop()

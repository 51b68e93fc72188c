"""Everything the operator talks to, on this machine: the embedded default.

``LocalStack`` starts a real PostgreSQL server (the metadata DB and the databases Neon
"creates"), the Neon API emulator on top of it, and the Kubernetes API emulator; then runs
the real operator (kopf, in-process) against them. The demo, the integration tests and the
benchmarks all use it, so what they show is what the operator really does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import kmock
import psycopg

from tenantdb.api import CLUSTER_KINDS, GROUP, KINDS, VERSION
from tenantdb.config import Settings
from tenantdb.handlers.main import build_runtime, operate
from tenantdb.handlers.runtime import Runtime
from tenantdb.metrics import Metrics
from tenantdb.testing.kube import KubernetesEmulator
from tenantdb.testing.manifests import load_manifests
from tenantdb.testing.neon import EmulatorOptions, NeonEmulator
from tenantdb.testing.postgres import PostgresServer
from tenantdb.testing.sim_schema import SimRows, create_sim_schema

__all__ = ["LocalStack", "OperatorReplica", "load_manifests"]

_PLURALS = {kind.kind: kind.plural for kind in (*KINDS, *CLUSTER_KINDS)}
_CLUSTER_SCOPED = {kind.kind for kind in CLUSTER_KINDS}


def _path(kind: str, namespace: str, name: str | None = None) -> str:
    if kind == "Secret":
        base = f"/api/v1/namespaces/{namespace}/secrets"
    elif kind in _CLUSTER_SCOPED:  # NeonOrganization, DatabaseTier: no namespace
        base = f"/apis/{GROUP}/{VERSION}/{_PLURALS[kind]}"
    else:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{_PLURALS[kind]}"
    return f"{base}/{name}" if name else base


class LocalStack:
    """PostgreSQL + Neon emulator + Kubernetes emulator (+ the operator, on demand)."""

    def __init__(
        self,
        *,
        postgres: PostgresServer | None = None,
        neon_options: EmulatorOptions | None = None,
        settings_overrides: dict[str, Any] | None = None,
        sim_schema: bool = False,
    ) -> None:
        self._own_postgres = postgres is None
        self.postgres = postgres or PostgresServer()
        self.neon_options = neon_options or EmulatorOptions()
        self.settings_overrides = settings_overrides or {}
        # True: the metadata DB is Sim-shaped (tenantdb.testing.sim_schema; rows through
        # ``self.sim``). False: a metadata DB without Sim, with the standalone env var tables.
        self.sim_schema = sim_schema
        self.encryption_key = secrets.token_hex(32)
        self.metadata_db = f"sim_{secrets.token_hex(4)}"
        self.neon: NeonEmulator | None = None
        self.kube: KubernetesEmulator | None = None
        self._kube_server: Any = None
        self._http: httpx.AsyncClient | None = None
        self._operator: _OperatorThread | None = None
        self.runtime: Runtime | None = None
        self.metrics = Metrics()

    # -- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> LocalStack:
        if self._own_postgres:
            await asyncio.to_thread(self.postgres.start)
        async with await psycopg.AsyncConnection.connect(self.postgres.admin_url, autocommit=True) as conn:
            await conn.execute(
                psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(self.metadata_db))
            )
        if self.sim_schema:
            async with await psycopg.AsyncConnection.connect(self.metadata_url, autocommit=True) as conn:
                await create_sim_schema(conn)
        self.neon = NeonEmulator(
            postgres_admin_url=self.postgres.admin_url, options=self.neon_options, ssl=self.postgres.ssl
        )
        await self.neon.start()
        self.kube = KubernetesEmulator()
        await self.kube.__aenter__()
        self._kube_server = kmock.Server(self.kube)
        await self._kube_server.__aenter__()
        # One connection per request, as kubectl does: a kept-alive connection to kmock's
        # server was seen to hang for good after an operator in the same loop was cancelled.
        self._http = httpx.AsyncClient(
            base_url=self.kube_url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_operator()
        if self._http is not None:
            await self._http.aclose()
        if self._kube_server is not None:
            await self._kube_server.__aexit__(None, None, None)
        if self.kube is not None:
            await self.kube.__aexit__(None, None, None)
        if self.neon is not None:
            await self.neon.stop()
        with contextlib.suppress(Exception):
            async with await psycopg.AsyncConnection.connect(
                self.postgres.admin_url, autocommit=True
            ) as conn:
                await conn.execute(
                    psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        psycopg.sql.Identifier(self.metadata_db)
                    )
                )
        if self._own_postgres:
            await asyncio.to_thread(self.postgres.stop)

    @property
    def kube_url(self) -> str:
        return str(self._kube_server.url).rstrip("/")

    @property
    def sim(self) -> SimRows:
        """Rows written into the Sim-shaped metadata DB the way Sim writes them."""
        return SimRows(self.metadata_url)

    @property
    def metadata_url(self) -> str:
        return self.postgres.url_for(self.postgres.superuser, self.postgres._password, self.metadata_db)

    def settings(self, **extra: Any) -> Settings:
        assert self.neon is not None
        values: dict[str, Any] = {
            "encryption_key": self.encryption_key,
            "neon_api_key": self.neon.api_key,
            "neon_org_id": self.neon.org_id,
            "neon_api_url": self.neon.base_url,
            "metadata_database_url": self.metadata_url,
            "neon_default_region": "aws-us-east-2",
            "resync_interval_seconds": 2.0,
            # A small fleet, checked in full every pass: drift heals in seconds in tests.
            "endpoint_checks_per_minute": 600.0,
            "delete_give_up_seconds": 3600.0,
            "neon_retry_deadline_seconds": 20.0,
            "health_port": 0,
            "metrics_port": 0,
            "standalone_env_tables": not self.sim_schema,
        }
        values.update(self.settings_overrides)
        values.update(extra)
        return Settings(**values)

    async def start_operator(self, **overrides: Any) -> None:
        """Run the real operator until ``stop_operator``, in a thread with its own event loop.

        Its own loop, as in production where it is a process of its own: when kopf stops, it
        waits for, then cancels, every task of its loop that it did not start with — here
        those would be the emulators' request handlers and the caller's own tasks.
        """
        if self._operator is not None:
            return
        if overrides:
            self.settings_overrides.update(overrides)
        self.runtime = build_runtime(self.settings(), kube_url=self.kube_url, metrics=self.metrics)
        self._operator = _OperatorThread(self.runtime)
        await self._operator.start()

    async def start_replica(self, **overrides: Any) -> OperatorReplica:
        """A second operator process (its own runtime and metrics) on the same emulators, e.g. a
        standby in a kopf peering; stop it with ``replica.stop()``."""
        runtime = build_runtime(self.settings(**overrides), kube_url=self.kube_url, metrics=Metrics())
        replica = _OperatorThread(runtime)
        await replica.start()
        return replica

    async def create_peering(self, name: str) -> None:
        """kopf's ``ClusterKopfPeering`` object, as the chart creates it."""
        assert self._http is not None
        response = await self._http.post(
            "/apis/kopf.dev/v1/clusterkopfpeerings",
            json={"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}},
        )
        response.raise_for_status()

    async def patch_peering(self, name: str, peers: dict[str, Any]) -> None:
        """Write peers' keep-alives into the peering object, as kopf does (``None`` removes one)."""
        assert self._http is not None
        response = await self._http.patch(
            f"/apis/kopf.dev/v1/clusterkopfpeerings/{name}",
            json={"status": peers},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        response.raise_for_status()

    async def get_peering(self, name: str) -> dict[str, Any] | None:
        assert self._http is not None
        response = await self._http.get(f"/apis/kopf.dev/v1/clusterkopfpeerings/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    async def stop_operator(self, *, abruptly: bool = False) -> None:
        """Stop the operator; ``abruptly`` cancels it mid-flight, like a killed pod."""
        if self._operator is None:
            return
        await self._operator.stop(abruptly=abruptly)
        self._operator = None

    # -- the Kubernetes API, as kubectl would use it ----------------------------------------------
    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None
        meta = manifest["metadata"]
        namespace = meta.get("namespace", "default")
        response = await self._http.post(_path(manifest["kind"], namespace), json=manifest)
        if response.status_code == 409:
            response = await self._http.patch(
                _path(manifest["kind"], namespace, meta["name"]),
                json={"spec": manifest.get("spec")},
                headers={"Content-Type": "application/merge-patch+json"},
            )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def patch(self, kind: str, name: str, patch: dict[str, Any], namespace: str = "default") -> None:
        assert self._http is not None
        response = await self._http.patch(
            _path(kind, namespace, name), json=patch, headers={"Content-Type": "application/merge-patch+json"}
        )
        response.raise_for_status()

    async def patch_status(
        self, kind: str, name: str, status: dict[str, Any], namespace: str = "default"
    ) -> None:
        """Merge-patch the status subresource (``kubectl patch --subresource=status``)."""
        assert self._http is not None
        response = await self._http.patch(
            _path(kind, namespace, name) + "/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        response.raise_for_status()

    async def delete(self, kind: str, name: str, namespace: str = "default") -> None:
        assert self._http is not None
        response = await self._http.delete(_path(kind, namespace, name))
        if response.status_code != 404:
            response.raise_for_status()

    async def get(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        assert self._http is not None
        response = await self._http.get(_path(kind, namespace, name))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def events_for(self, name: str, namespace: str = "default") -> list[dict[str, Any]]:
        assert self._http is not None
        response = await self._http.get(f"/api/v1/namespaces/{namespace}/events")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json().get("items", [])
        return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]

    async def wait_for(
        self,
        kind: str,
        name: str,
        predicate: Callable[[dict[str, Any] | None], bool],
        *,
        namespace: str = "default",
        timeout: float = 60.0,
        what: str = "the expected state",
    ) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        obj = None
        while time.monotonic() < deadline:
            obj = await self.get(kind, name, namespace)
            if predicate(obj):
                return obj
            await asyncio.sleep(0.2)
        phase = ((obj or {}).get("status") or {}).get("phase")
        conditions = ((obj or {}).get("status") or {}).get("conditions")
        raise TimeoutError(
            f"{kind} {namespace}/{name}: no {what} within {timeout}s "
            f"(phase {phase!r}, conditions {conditions!r})"
        )

    async def wait_ready(
        self, kind: str, name: str, *, namespace: str = "default", timeout: float = 60.0
    ) -> dict[str, Any]:
        obj = await self.wait_for(kind, name, is_ready, namespace=namespace, timeout=timeout, what="Ready")
        assert obj is not None
        return obj

    async def wait_gone(
        self, kind: str, name: str, *, namespace: str = "default", timeout: float = 60.0
    ) -> None:
        await self.wait_for(
            kind, name, lambda o: o is None, namespace=namespace, timeout=timeout, what="deletion"
        )

    async def metadata_query(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.metadata_url) as conn:
            cursor = await conn.execute(psycopg.sql.SQL(query), params)
            return await cursor.fetchall()


class _SignalsAreOursOnPurpose(logging.Filter):
    """Drop kopf's warning that it ignores OS signals off the main thread: here that is the
    design (the caller's main thread owns the signals and stops kopf through its stop flag)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("OS signals are ignored")


_SIGNALS_FILTER = _SignalsAreOursOnPurpose()


class _OperatorThread:
    """``operate()`` in a thread of its own with its own event loop."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._stop_flag = threading.Event()
        self._ready_flag = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tenantdb-operator", daemon=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(
                operate(self.runtime, stop_flag=self._stop_flag, ready_flag=self._ready_flag, liveness=False)
            )
            try:
                loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                # Killed mid-flight: kopf's clean-up did not run, so close what it would have.
                with contextlib.suppress(Exception):
                    loop.run_until_complete(self.runtime.close())
            except BaseException as exc:  # reported to whoever waits for the start
                self._error = exc
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            # kopf waits for a threading.Event stop flag in the loop's default executor. When
            # the operator ends without the flag (cancelled, or failed to start), that worker
            # would wait forever and the interpreter's exit, which joins executor workers,
            # with it: release it, then wait for the executor's workers.
            self._stop_flag.set()
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def start(self, timeout: float = 30.0) -> None:
        logging.getLogger("kopf._core.reactor.running").addFilter(_SIGNALS_FILTER)  # once: same filter
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._ready_flag.is_set():
            if not self._thread.is_alive():
                raise RuntimeError("the operator stopped while starting") from self._error
            if time.monotonic() > deadline:
                await self.stop(abruptly=True)
                raise TimeoutError(f"the operator did not become ready within {timeout:.0f} s")
            await asyncio.sleep(0.02)

    async def stop(self, *, abruptly: bool) -> None:
        if abruptly and self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._task.cancel)
        else:
            self._stop_flag.set()
        await asyncio.to_thread(self._thread.join, 30)


OperatorReplica = _OperatorThread


def is_ready(obj: dict[str, Any] | None) -> bool:
    if not obj:
        return False
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"not reached within {timeout}s: {what}")

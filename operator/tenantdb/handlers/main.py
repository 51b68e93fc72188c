"""Build and run the operator: kopf settings, the registry, start-up and clean-up."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

import kopf
import pydantic

from tenantdb.api import ROTATE_CREDENTIALS_ANNOTATION
from tenantdb.config import LogFormat, Settings
from tenantdb.crypto import InvalidKeyError, KeyRing
from tenantdb.handlers.budgets import register_budget_handlers, start_budget_loop
from tenantdb.handlers.databases import register_database_handlers
from tenantdb.handlers.decision_log import start_decision_log_retention
from tenantdb.handlers.fleet import start_fleet_observation
from tenantdb.handlers.heap import trim_heap_periodically
from tenantdb.handlers.kube_login import login_in_cluster_or_kubeconfig
from tenantdb.handlers.loops import Loops
from tenantdb.handlers.organizations import start_organization_refresh
from tenantdb.handlers.runtime import Runtime
from tenantdb.handlers.sim_sync import start_sim_sync
from tenantdb.handlers.tier_rollout import start_tier_rollout
from tenantdb.handlers.tiers import register_tier_handlers
from tenantdb.metrics import Metrics
from tenantdb.neon.errors import NeonAuthError, NeonTransientError
from tenantdb.redact import install_redaction, quiet_body_loggers
from tenantdb.store import StoreSchemaError

if TYPE_CHECKING:  # the transport seam for tests; httpx itself stays in tenantdb.neon
    import httpx

__all__ = ["build_registry", "build_runtime", "operate", "run_operator"]

FINALIZER = "tenantdb.io/finalizer"
ANNOTATION_PREFIX = "tenantdb.io"
DIFFBASE_KEY = "last-handled-configuration"
# How long kopf's start waits for the signups made while the operator was down (a slow Neon
# must not hold back the fleet's resume for long).
START_UP_TAKES_SECONDS = 5.0


class ConfigurationError(Exception):
    """The operator cannot start as configured (message says what to fix; never a secret)."""


def build_runtime(
    settings: Settings,
    *,
    kube_url: str | None = None,
    metrics: Metrics | None = None,
    neon_transport: httpx.AsyncBaseTransport | None = None,
) -> Runtime:
    try:
        cipher = KeyRing.from_text(
            settings.encryption_key.get_secret_value(), settings.previous_encryption_keys.get_secret_value()
        )
    except InvalidKeyError as exc:
        raise ConfigurationError(str(exc)) from None
    if not settings.neon_api_key.get_secret_value():
        raise ConfigurationError("NEON_API_KEY is not set: the operator needs a Neon API key")
    if not settings.metadata_database_url.get_secret_value():
        raise ConfigurationError(
            "TENANTDB_METADATA_DATABASE_URL is not set: the operator needs the platform's metadata DB"
        )
    return Runtime(
        settings=settings,
        cipher=cipher,
        metrics=metrics or Metrics(),
        kube_url=kube_url,
        neon_transport=neon_transport,
    )


class _ProgressStorage(kopf.AnnotationsProgressStorage):
    """kopf's progress per handler, in annotations under our prefix (``tenantdb.io/...``).

    kopf leaves every annotation under its storage's prefix out of the essence it compares to
    find a change (they are its own bookkeeping). The rotation annotation is a person's, under
    the same prefix: kept in, so a new value is a change and the rotate handler runs."""

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        value = essence.get("metadata", {}).get("annotations", {}).get(ROTATE_CREDENTIALS_ANNOTATION)
        cleared = super().clear(essence=essence)
        if value is not None:
            metadata = cleared.setdefault("metadata", {})
            metadata.setdefault("annotations", {})[ROTATE_CREDENTIALS_ANNOTATION] = value
        return cleared


def build_registry(runtime: Runtime, loops: Loops | None = None) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    app_settings = runtime.settings
    loops = loops if loops is not None else Loops()

    @kopf.on.startup(registry=registry)
    async def configure(
        settings: kopf.OperatorSettings, memo: Runtime, logger: kopf.Logger, **_: Any
    ) -> None:
        # A named finalizer and kopf's bookkeeping in annotations: status stays ours, with a
        # strict schema, and nothing kopf writes is pruned by the API server.
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = _ProgressStorage(prefix=ANNOTATION_PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=ANNOTATION_PREFIX, key=DIFFBASE_KEY
        )
        # kopf's known trap: a watch stream that goes silent is never noticed. Ask the server
        # to end each watch and time out on our side too, so streams are restarted.
        settings.watching.server_timeout = 270
        settings.watching.client_timeout = 300
        settings.watching.connect_timeout = 30
        # The initial list in pages: 30,000 resources in one answer is tens of MB of JSON
        # parsed at once (the start-up peak the process keeps); 500 is the API server's advice.
        settings.watching.chunk_size = app_settings.list_page_size
        settings.networking.request_timeout = 60
        settings.posting.reporting_component = "tenantdb"
        # kopf posts an Event for every handler that succeeds: at a restart, one per resource
        # (30,000 Event writes for nothing). Our own events say what changed; kopf's only its
        # warnings and errors.
        settings.posting.level = logging.WARNING
        settings.execution.max_workers = 4  # sync work never runs here; keep the pool small
        # The fast lane first: a signup made while the operator was down or is starting is
        # found while the rest opens, and taken as soon as it has.
        await memo.open_kube()
        lane = loops.start_fast_lane(
            memo, finalizer=FINALIZER, diffbase_key=f"{ANNOTATION_PREFIX}/{DIFFBASE_KEY}"
        )
        try:
            await memo.open()
        except NeonAuthError as exc:
            # Retrying cannot fix a wrong key or organisation: stop, saying what to change
            # (and close what is open: the lane, the Kubernetes client).
            await _close(loops, memo)
            raise kopf.PermanentError(f"cannot start: {exc.message}") from None
        except NeonTransientError as exc:
            raise kopf.TemporaryError(f"Neon is unreachable at start-up: {exc.message}", delay=10) from None
        except StoreSchemaError as exc:
            await _close(loops, memo)
            raise kopf.PermanentError(f"cannot start: {exc}") from None
        lane.clients_open()
        # Before kopf's own list: what was made while the operator was down, taken first. And
        # before the loops and the budget rows: their first rounds read thousands of rows on
        # this event loop (measured at 10,000 budgets: the first signup's project 0.5 s later).
        await lane.listed()
        await lane.taken(timeout=START_UP_TAKES_SECONDS)
        await memo.read_budget_resume_snapshot()
        loops.start("organizations", start_organization_refresh(memo))
        loops.start("budget-sync", start_budget_loop(memo))
        if app_settings.sim_sync:
            loops.start("sim-sync", start_sim_sync(memo))
        loops.start("fleet-observation", start_fleet_observation(memo))
        loops.start("tier-rollout", start_tier_rollout(memo))
        loops.start("heap-trim", trim_heap_periodically())
        loops.start("decision-log-retention", start_decision_log_retention(memo))
        logger.info(
            "tenantdb started: Neon at %s, %s",
            app_settings.neon_api_url,
            f"namespaces {', '.join(app_settings.namespaces)}" if app_settings.namespaces else "cluster-wide",
        )

    @kopf.on.cleanup(registry=registry)
    async def close(memo: Runtime, **_: Any) -> None:
        await _close(loops, memo)

    if runtime.kube_url is not None:
        url = runtime.kube_url

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=url, insecure=True)

    else:
        # A plain registry has none of kopf's default logins: without this the operator found
        # no credentials at all in a cluster (seen on a real kube-apiserver). The same source
        # as the operator's own client: the in-cluster ServiceAccount, else kubeconfig.
        kopf.on.login(registry=registry, id="login_in_cluster_or_kubeconfig")(login_in_cluster_or_kubeconfig)

    register_database_handlers(registry)
    register_budget_handlers(registry, settings=app_settings)
    register_tier_handlers(registry)
    return registry


async def _close(loops: Loops, runtime: Runtime) -> None:
    """The loops first, then the clients they use."""
    await loops.close()
    await runtime.close()


async def operate(
    runtime: Runtime,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    liveness: bool = True,
) -> None:
    """Run the operator until ``stop_flag`` is set (or forever)."""
    quiet_body_loggers()  # here too: an embedding (tests, the demo) sets no logging of its own
    loops = Loops()
    registry = build_registry(runtime, loops)
    try:
        await _run_kopf(runtime, registry, stop_flag=stop_flag, ready_flag=ready_flag, liveness=liveness)
    finally:
        # kopf's clean-up handler stopped them; an operator cancelled mid-flight (killed) did
        # not run it, and its loops must not outlive it.
        await loops.close()


async def _run_kopf(
    runtime: Runtime,
    registry: kopf.OperatorRegistry,
    *,
    stop_flag: asyncio.Event | threading.Event | None,
    ready_flag: asyncio.Event | threading.Event | None,
    liveness: bool,
) -> None:
    settings = runtime.settings
    await kopf.operator(
        registry=registry,
        memo=runtime,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=not settings.peering_name,
        peering_name=settings.peering_name or None,
        priority=settings.peering_priority,
        identity=runtime.identity,  # type: ignore[arg-type]  # kopf's Identity is a NewType of str
        liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz" if liveness else None,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


def configure_logging(settings: Settings, *, verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else getattr(logging, settings.log_level.upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if settings.log_format == LogFormat.JSON
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    quiet_body_loggers()
    if level > logging.DEBUG:
        # httpx says every request at INFO: at 30,000 tenants the fleet pass's reads alone are
        # about 40 lines a second, saying nothing the operator's own lines and metrics do not.
        # They are there at DEBUG (``--verbose``).
        logging.getLogger("httpx").setLevel(max(logging.WARNING, level))
    install_redaction()


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("k8s_kind", "k8s_namespace", "k8s_name"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_text or record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry)


def run_operator(*, verbose: bool = False) -> int:
    """``tenantdb run``: settings from the environment; exit 2 on a configuration error."""
    try:
        settings = Settings()  # pydantic-settings fills it from the environment
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        print(f"tenantdb: invalid configuration: {problems}", file=sys.stderr)
        return 2
    try:
        runtime = build_runtime(settings)
    except ConfigurationError as exc:
        print(f"tenantdb: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings, verbose=verbose)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, registry=runtime.metrics.registry)
    asyncio.run(operate(runtime))
    return 0

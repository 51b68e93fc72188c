"""``tenantdb adopt``: settings from the environment (as ``tenantdb run``), the clients, the answer.

``--dry-run`` reads the metadata DB (one READ ONLY transaction) and Neon's project list (paged,
background priority, every call counted and said) and writes nothing anywhere: no migration,
no Kubernetes call. Without it, the resources the Sim sync would make are created with
progress (``switch_on``); Kubernetes is reached as the operator reaches it (the in-cluster
ServiceAccount, else a kubeconfig), through the ``login`` the CLI passes in.

Nothing printed holds a connection string, a password or the metadata DB's URL: errors are
the store's and the clients' own, which never repeat them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Final, TextIO

from pydantic import ValidationError

from tenantdb.config import Settings
from tenantdb.crypto import EncryptionKey, InvalidKeyError
from tenantdb.kube import CustomResources, KubeClient, KubeError, Login
from tenantdb.metrics import Metrics
from tenantdb.neon import NeonClient, NeonError, background_calls
from tenantdb.reconcile.adoption.report import as_json, as_text, progress_json, progress_text
from tenantdb.reconcile.adoption.survey import Survey, survey
from tenantdb.reconcile.adoption.switch_on import Progress, switch_on
from tenantdb.reconcile.sim_sync.desired import desired_resources
from tenantdb.store import MetadataStore, StoreError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_NOT_DONE",
    "EXIT_OK",
    "adopt_from_environment",
    "dry_run",
    "run_switch_on",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # the metadata DB, Neon or the API server failed (nothing half-written matters)
EXIT_CONFIG: Final = 2  # configuration missing or invalid, as for the other commands
EXIT_NOT_DONE: Final = 3  # the switch-on stopped at --timeout before everything was there: run it again

_POOL_SIZE: Final = 2


class _ConfigError(Exception):
    pass


def _settings() -> tuple[Settings, EncryptionKey]:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False, include_context=False)
        )
        raise _ConfigError(f"invalid configuration: {problems}") from None
    try:
        cipher = EncryptionKey(settings.encryption_key.get_secret_value())
    except InvalidKeyError as exc:
        raise _ConfigError(str(exc)) from None
    if not settings.metadata_database_url.get_secret_value().strip():
        raise _ConfigError("TENANTDB_METADATA_DATABASE_URL is not set")
    return settings, cipher


def _neon_calls(metrics: Metrics) -> int:
    """Every Neon call the client made (retries included), from its own counter."""
    return int(
        sum(
            sample.value
            for family in metrics.neon_calls.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        )
    )


async def dry_run(settings: Settings, cipher: EncryptionKey, *, neon: NeonClient, metrics: Metrics) -> Survey:
    """Read everything, write nothing: what switching on would do (see ``survey``)."""
    store = await MetadataStore.open(
        settings.metadata_database_url.get_secret_value(), cipher=cipher, max_size=_POOL_SIZE
    )
    try:
        await neon.validate()  # the organisation's id, for the list, when the key names it
        with background_calls():  # nobody waits for it: it yields to the operator's own calls
            projects = await neon.list_projects()
        inventory = await store.read_adoption_inventory()
    finally:
        await store.close()
    return survey(
        inventory,
        projects,
        prefix=settings.project_name_prefix,
        namespace=settings.sim_namespace,
        cipher=cipher,
    )


async def run_switch_on(
    settings: Settings,
    cipher: EncryptionKey,
    *,
    kube: KubeClient,
    report: Callable[[Progress], None],
    interval: float,
    wait_ready: bool,
    timeout: float | None,
) -> Progress:
    """The resources the Sim sync would make, created now (creates only), with progress."""
    store = await MetadataStore.open(
        settings.metadata_database_url.get_secret_value(), cipher=cipher, max_size=_POOL_SIZE
    )
    try:
        _, snapshot = await store.sim_snapshot()
    finally:
        await store.close()
    desired = desired_resources(
        snapshot,
        plan_tiers=settings.plan_tiers(),
        default_tier=settings.default_tier,
        # Adoption switches one namespace on: TENANTDB_SIM_NAMESPACE, whatever the shards.
        namespaces=[settings.sim_namespace],
    )
    return await switch_on(
        desired=desired,
        resources=CustomResources(kube),
        namespace=settings.sim_namespace,
        writes_per_second=settings.sim_writes_per_second,
        report=report,
        interval=interval,
        wait_ready=wait_ready,
        timeout=timeout,
    )


async def adopt_from_environment(
    *,
    dry: bool,
    json_output: bool,
    login: Login,
    interval: float = 10.0,
    wait_ready: bool = True,
    timeout: float | None = None,
    kube_host: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``tenantdb adopt [--dry-run]``: print the answer (or the progress); the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        settings, cipher = _settings()
        if dry and not settings.neon_api_key.get_secret_value():
            raise _ConfigError("NEON_API_KEY is not set: the dry run reads Neon's project list")
    except _ConfigError as exc:
        print(f"tenantdb adopt: {exc}", file=err)
        return EXIT_CONFIG
    try:
        if dry:
            metrics = Metrics()
            async with NeonClient.from_settings(settings, metrics=metrics) as neon:
                result = await dry_run(settings, cipher, neon=neon, metrics=metrics)
                org = neon.org_id
            render = as_json if json_output else as_text
            print(render(result, org_id=org, neon_calls=_neon_calls(metrics)), file=out)
            return EXIT_OK
        line = progress_json if json_output else progress_text

        def report(progress: Progress) -> None:
            print(line(progress, now=time.monotonic()), file=out, flush=True)

        kube = await KubeClient.connect(host=kube_host, login=login)
        try:
            progress = await run_switch_on(
                settings,
                cipher,
                kube=kube,
                report=report,
                interval=interval,
                wait_ready=wait_ready,
                timeout=timeout,
            )
        finally:
            await kube.close()
        print(line(progress, now=time.monotonic(), final=True), file=out, flush=True)
        return EXIT_OK if progress.done else EXIT_NOT_DONE
    except (StoreError, NeonError, KubeError) as exc:
        print(f"tenantdb adopt: {exc}", file=err)
        return EXIT_FAILED

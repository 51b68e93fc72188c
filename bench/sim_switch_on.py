"""Benchmark: the Sim sync switched on over a Sim whose users have no resources yet.

A real kube-apiserver with the CRDs (``make kube-assets``; without its binaries, the Kubernetes
emulator, said in the result), a Sim-shaped PostgreSQL with N users, each with a live workspace,
half of them with the metadata row the in-app provisioning left (read before their creates;
their GlobalDatabases name that project in ``spec.projectId``), and the sync as the operator
runs it: default settings (``TENANTDB_SIM_WRITES_PER_SECOND`` 20, 1 s poll), ``run_forever``.

Measured:
* the create rate over the whole backlog (3 N resources), first pass included: what a
  switch-on of 100,000 users (300,000 resources) takes at that rate;
* a user deleted in Sim while the backlog is worked off: how long until both of the user's
  resources are gone from the API server (one write slice at most, not the backlog).

Usage: ``.venv/bin/python bench/sim_switch_on.py [--users 300] [--full]``; writes
``bench/results/quick/sim_switch_on.json``, with ``--full`` (1,000 users, about 3 minutes)
``bench/results/sim_switch_on.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import kmock
import psycopg

import _quick
from tenantdb.config import Settings
from tenantdb.crypto import EncryptionKey
from tenantdb.kube import CustomResources, KubeClient
from tenantdb.kube.transport import KubeCredentials, KubeHttp
from tenantdb.metrics import Metrics
from tenantdb.reconcile.sim_sync import SimSync
from tenantdb.store import MetadataStore
from tenantdb.testing.apiserver import AssetsNotFoundError, KubeApiServer, find_kube_assets
from tenantdb.testing.kube import KubernetesEmulator
from tenantdb.testing.manifests import load_manifests
from tenantdb.testing.postgres import PostgresServer
from tenantdb.testing.sim_schema import create_sim_schema

CRDS = Path(__file__).parent.parent / "crds"
PLURALS = ("globaldatabases", "workspacedatabases", "databasebudgets")
_START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", flush=True)


@contextlib.asynccontextmanager
async def cluster() -> AsyncIterator[tuple[KubeClient, str]]:
    """A client to a real kube-apiserver with the CRDs installed, else to the emulator."""
    try:
        find_kube_assets()
    except AssetsNotFoundError:
        say("no kube-apiserver binaries (make kube-assets): the Kubernetes emulator instead")
        async with KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
            kube = await KubeClient.connect(host=str(server.url).rstrip("/"))
            try:
                yield kube, "kubernetes emulator"
            finally:
                await kube.close()
        return
    with KubeApiServer(garbage_collector=False) as server:
        install_crds(server)
        admin = server.admin
        credentials = KubeCredentials(
            server=server.url,
            ca_path=str(admin.ca_path),
            certificate_path=str(admin.cert_path),
            private_key_path=str(admin.key_path),
        )
        kube = KubeClient(KubeHttp(credentials))
        try:
            yield kube, "kube-apiserver"
        finally:
            await kube.close()


def install_crds(server: KubeApiServer) -> None:
    crds = [doc for path in sorted(CRDS.glob("*.yaml")) for doc in load_manifests(path)]
    with server.client() as http:
        for crd in crds:
            http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd).raise_for_status()
        deadline = time.monotonic() + 60
        while http.get("/apis/tenantdb.io/v1alpha1").status_code != 200 or not all(
            _established(http, crd["metadata"]["name"]) for crd in crds
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the CRDs were not served within 60 s")
            time.sleep(0.2)


def _established(http: httpx.Client, name: str) -> bool:
    got = http.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
    conditions = (got.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


async def fill(url: str, users: int) -> None:
    """N users, a live workspace each; half with the rows in-app provisioning left."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            'INSERT INTO "user" (id, name, email, created_at, updated_at) '
            "SELECT gen_random_uuid()::text, 'u' || i, 'u' || i || '@example.com', "
            "now() - interval '1 day', now() - interval '1 day' FROM generate_series(1, %s) AS i",
            (users,),
        )
        await conn.execute(
            "INSERT INTO workspace (id, name, owner_id, billed_account_user_id, created_at, updated_at) "
            "SELECT gen_random_uuid()::text, 'w', id, id, now() - interval '1 day', now() - interval '1 day' "
            'FROM "user"'
        )
        await conn.execute(
            "INSERT INTO user_global_database (id, user_id, neon_project_id, neon_branch_id, "
            "neon_connection_uri) SELECT gen_random_uuid()::text, id, 'app-' || substr(md5(id), 1, 12), "
            "'br-x', 'x' FROM \"user\" WHERE random() < 0.5"
        )
        await conn.execute("ANALYZE")


async def count(resources: CustomResources) -> int:
    return sum([len(await resources.list(plural=p, namespace="default")) for p in PLURALS])


async def main(users: int) -> dict[str, Any]:
    key_hex = secrets.token_hex(32)
    with PostgresServer() as pg:
        dbname = "sim_switch_on"
        async with await psycopg.AsyncConnection.connect(pg.admin_url, autocommit=True) as admin:
            await admin.execute(f"CREATE DATABASE {dbname}")
        url = pg.url_for(pg.superuser, pg._password, dbname)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await create_sim_schema(conn)
        async with (
            await MetadataStore.open(url, cipher=EncryptionKey(key_hex)) as store,
            cluster() as (kube, served_by),
        ):
            await store.migrate()
            await fill(url, users)
            wanted = 3 * users
            say(f"{users} users in Sim ({wanted} resources to make), cluster: {served_by}")
            settings = Settings(encryption_key=key_hex, metadata_database_url=url, sim_sync=True)
            resources = CustomResources(kube)
            metrics = Metrics()
            sync = SimSync(
                settings=settings,
                tables=store,
                resources=resources,
                post_event=_no_event,
                metrics=metrics,
            )

            def created() -> float:
                return (
                    metrics.registry.get_sample_value("tenantdb_sim_sync_writes_total", {"action": "create"})
                    or 0
                )

            started = time.monotonic()
            loop = asyncio.create_task(sync.run_forever(is_active=lambda: True))
            try:
                # A user who already has their resources leaves while a third of the backlog is done.
                await until(lambda: _true(created() >= wanted / 3))
                leaving = await _one_user_with_resources(url, resources)
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute('DELETE FROM "user" WHERE id = %s', (leaving,))
                deleted = time.monotonic()
                await until(lambda: _gone(resources, leaving), every=0.1)
                delete_seconds = time.monotonic() - deleted
                say(f"a user deleted in the middle of the backlog: resources gone in {delete_seconds:.1f} s")
                await until(lambda: _true(not sync.backlog))
                elapsed = time.monotonic() - started
            finally:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
            made = int(created())
            present = await count(resources)
    rate = made / elapsed
    say(f"{made} created in {elapsed:.1f} s: {rate:.2f} resources/s")
    hours = 300_000 / rate / 3600
    say(f"at that rate, 100,000 users (300,000 resources): {hours:.1f} h")
    return {
        "users": users,
        "cluster": served_by,
        "sim_writes_per_second": settings.sim_writes_per_second,
        "resources_created": made,
        "resources_present": present,
        "seconds": round(elapsed, 1),
        "create_rate_per_second": round(rate, 2),
        "delete_during_backlog_seconds": round(delete_seconds, 2),
        "switch_on_100000_users_hours": round(hours, 2),
    }


async def _one_user_with_resources(url: str, resources: CustomResources) -> str:
    budgets = await resources.list(plural="databasebudgets", namespace="default")
    user_id: str = budgets[0]["spec"]["userId"]
    return user_id


async def until(check: Callable[[], Awaitable[bool]], *, every: float = 0.2) -> None:
    while True:
        if await check():
            return
        await asyncio.sleep(every)


async def _true(value: bool) -> bool:
    return value


async def _gone(resources: CustomResources, user_id: str) -> bool:
    for plural in ("globaldatabases", "databasebudgets"):
        if await resources.get(plural=plural, namespace="default", name=f"user-{user_id}") is not None:
            return False
    return True


async def _no_event(
    kind: str, name: str, reason: str, message: str, *, namespace: str = "", type_: str = "Normal"
) -> None:
    return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=300, help="Sim users (default 300; --full 1000)")
    parser.add_argument("--output", type=Path, default=None, help="result file (default: see --full)")
    args = _quick.parse(parser, full={"users": 1000})
    results = asyncio.run(main(args.users)) | _quick.commit()
    _quick.output(args, "sim_switch_on.json").write_text(json.dumps(results, indent=2) + "\n")
    json.dump(results, sys.stdout, indent=2)
    print()

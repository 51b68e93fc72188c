"""Benchmark: the Sim sync against a Sim-shaped database of 100,000 users.

Sim's tables are filled as Sim would have them (``tenantdb.testing.sim_schema``: 100,000 users,
one live workspace each plus 5 % archived ones, 10 % of users on a paid plan, a team
organisation for 1 % of them), with a metadata row per user and per live workspace as the
in-app provisioning left them (1 % of them the user's own database), on a real PostgreSQL
server, with the operator's own store and the sync's own code (``SimSync.run_once``). The
cluster side is an in-memory stand-in that holds what the sync created and counts the calls:
listing 300,000 objects from a real API server is not measured here, only counted (pages of
500); the rate of creates against a real one is ``bench/sim_switch_on.py``'s.

Measured:
* the poll that runs every ``TENANTDB_SIM_POLL_INTERVAL_SECONDS`` when nothing changed (the
  fingerprint query): its database time;
* a pass after a change (fingerprint, snapshot, plan): what a new user costs at this size;
* the full comparison (every ``TENANTDB_SIM_FULL_SYNC_INTERVAL_SECONDS``): the same plus a listing;
* latency from Sim's commit of a new user to the sync's create calls, with the loop running at
  the default 1 s poll.

Usage: ``.venv/bin/python bench/sim_sync.py [--users 100000] [--full]``; writes
``bench/results/quick/sim_sync.json``, with ``--full`` ``bench/results/sim_sync.json``. The
defaults are already the full size (under a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg

import _quick
from tenantdb.config import Settings
from tenantdb.crypto import EncryptionKey
from tenantdb.metrics import Metrics
from tenantdb.reconcile.sim_sync import SimSync
from tenantdb.store import MetadataStore
from tenantdb.testing.postgres import PostgresServer
from tenantdb.testing.sim_schema import SimRows, create_sim_schema

PAGE = 500


class Cluster:
    """The API server's side, in memory: objects by (plural, name); every call counted."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: dict[str, int] = {}
        self.created_at: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def wait_created(self, name: str) -> None:
        while name not in self.created_at:
            self.changed.clear()
            await self.changed.wait()

    def _count(self, verb: str) -> None:
        self.calls[verb] = self.calls.get(verb, 0) + 1

    async def list(self, *, plural: str, namespace: str) -> list[dict[str, Any]]:
        items = [obj for (p, _), obj in self.objects.items() if p == plural]
        for _ in range(max(1, -(-len(items) // PAGE))):
            self._count("list (pages of 500)")
        return items

    async def get(self, *, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        self._count("get")
        return self.objects.get((plural, name))

    async def create(self, *, plural: str, namespace: str, body: Mapping[str, Any]) -> bool:
        self._count("create")
        key = (plural, body["metadata"]["name"])
        if key in self.objects:
            return False
        self.objects[key] = dict(body)
        self.created_at[body["metadata"]["name"]] = time.monotonic()
        self.changed.set()
        return True

    async def patch(self, *, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        self._count("patch")
        obj = self.objects[(plural, name)]
        obj["spec"] = {**obj["spec"], **patch.get("spec", {})}

    async def delete(self, *, plural: str, namespace: str, name: str) -> None:
        self._count("delete")
        self.objects.pop((plural, name), None)


async def fill(url: str, users: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await create_sim_schema(conn)
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
            "INSERT INTO workspace (id, name, owner_id, billed_account_user_id, archived_at) "
            "SELECT gen_random_uuid()::text, 'old', id, id, now() - interval '1 hour' FROM \"user\" "
            "WHERE random() < 0.05"
        )
        await conn.execute(
            "INSERT INTO subscription (id, plan, reference_id, status) "
            "SELECT gen_random_uuid()::text, 'pro_6000', id, 'active' FROM \"user\" WHERE random() < 0.10"
        )
        await conn.execute(
            "INSERT INTO organization (id, name, slug) "
            "SELECT 'org-' || id, 'team', 'org-' || id FROM \"user\" WHERE random() < 0.01"
        )
        await conn.execute(
            "INSERT INTO member (id, user_id, organization_id, role) "
            "SELECT gen_random_uuid()::text, substr(id, 5), id, 'owner' FROM organization"
        )
        await conn.execute(
            "INSERT INTO subscription (id, plan, reference_id, status) "
            "SELECT gen_random_uuid()::text, 'team_6000', id, 'active' FROM organization"
        )
        await conn.execute(
            "INSERT INTO environment (id, user_id, variables) "
            'SELECT gen_random_uuid()::text, id, \'{"A": "x"}\' FROM "user" WHERE random() < 0.3'
        )


async def fill_metadata_rows(url: str) -> None:
    """A row per user and live workspace, as the in-app provisioning left them (a URI's length),
    1 % of them a database the user brought; GLOBAL_DB_URL in every environment row."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for table, column, source in (
            ("user_global_database", "user_id", 'SELECT id FROM "user"'),
            ("workspace_database", "workspace_id", "SELECT id FROM workspace WHERE archived_at IS NULL"),
        ):
            await conn.execute(
                f"INSERT INTO {table} (id, {column}, ownership_type, neon_project_id, neon_branch_id, "
                "neon_connection_uri) SELECT gen_random_uuid()::text, s.id, "
                "CASE WHEN random() < 0.01 THEN 'user' ELSE 'platform' END, "
                "'app-' || substr(md5(s.id), 1, 12), 'br-x', repeat('e', 200) "
                f"FROM ({source}) AS s"
            )
        # The app published each user's database in GLOBAL_DB_URL too.
        await conn.execute("""UPDATE environment SET variables = '{"A": "x", "GLOBAL_DB_URL": "e"}'""")
        await conn.execute("ANALYZE")


def timed_ms(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(samples) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
    }


async def main(users: int) -> dict[str, Any]:
    key_hex = secrets.token_hex(32)
    with PostgresServer() as pg:
        dbname = "sim_bench"
        async with await psycopg.AsyncConnection.connect(pg.admin_url, autocommit=True) as admin:
            await admin.execute(f"CREATE DATABASE {dbname}")
        url = pg.url_for(pg.superuser, pg._password, dbname)
        started = time.monotonic()
        await fill(url, users)
        print(f"filled Sim's tables with {users} users in {time.monotonic() - started:.1f} s", flush=True)
        settings = Settings(
            encryption_key=key_hex,
            metadata_database_url=url,
            sim_sync=True,
            sim_full_sync_interval_seconds=3600.0,
            sim_writes_per_second=1e9,  # the first fill is not what is measured here
        )
        async with await MetadataStore.open(url, cipher=EncryptionKey(key_hex)) as store:
            await store.migrate()
            await fill_metadata_rows(url)
            cluster = Cluster()
            events: list[str] = []

            async def post_event(
                kind: str, name: str, reason: str, message: str, *, namespace: str = "", type_: str = "Normal"
            ) -> None:
                events.append(reason)

            sync = SimSync(
                settings=settings, tables=store, resources=cluster, post_event=post_event, metrics=Metrics()
            )

            # The first fill, without the write rate (bench/sim_switch_on.py measures that):
            # slice after slice until the backlog is worked off.
            started = time.monotonic()
            created = 0
            while True:
                first = await sync.run_once()
                created += first.created if first is not None else 0
                if not sync.backlog:
                    break
            initial = time.monotonic() - started
            print(f"first full pass: {created} created in {initial:.1f} s", flush=True)

            idle: list[float] = []
            for _ in range(30):
                t0 = time.monotonic()
                assert await sync.run_once() is None
                idle.append(time.monotonic() - t0)
            print(f"idle poll (fingerprint only): {timed_ms(idle)}", flush=True)

            sim = SimRows(url)
            changed: list[float] = []
            for _ in range(10):
                await sim.register_user()
                t0 = time.monotonic()
                result = await sync.run_once()
                changed.append(time.monotonic() - t0)
                assert result is not None
                assert result.created == 2
            print(f"pass after a new user: {timed_ms(changed)}", flush=True)

            full: list[float] = []
            calls_before = dict(cluster.calls)
            for _ in range(3):
                sync.forget()
                t0 = time.monotonic()
                result = await sync.run_once()
                full.append(time.monotonic() - t0)
                assert result is not None
                assert result.created == result.deleted == result.patched == 0
            pages = "list (pages of 500)"
            list_pages = (cluster.calls[pages] - calls_before.get(pages, 0)) // 3
            print(f"full pass (steady state): {timed_ms(full)}, {list_pages} list pages", flush=True)

            # Latency with the loop running at the default poll interval.
            sync._settings = settings.model_copy(update={"sim_poll_interval_seconds": 1.0})
            loop = asyncio.create_task(sync.run_forever(is_active=lambda: True))
            latencies: list[float] = []
            for _ in range(10):
                await asyncio.sleep(0.37)  # land at a different phase of the poll each time
                committed = time.monotonic()
                user_id = await sim.register_user()
                await cluster.wait_created(f"user-{user_id}")
                latencies.append(cluster.created_at[f"user-{user_id}"] - committed)
            loop.cancel()
            print(f"commit to create, 1 s poll: {timed_ms(latencies)}", flush=True)
    return {
        "users": users,
        "live_workspaces": users,
        "kubernetes_objects": len(cluster.objects),
        "idle_poll": timed_ms(idle),
        "pass_after_new_user": timed_ms(changed),
        "full_pass_without_listing_time": timed_ms(full),
        "full_pass_list_pages_of_500": list_pages,
        "new_user_commit_to_create": timed_ms(latencies),
        "first_full_pass_seconds": round(initial, 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000, help="Sim users (default 100000)")
    parser.add_argument("--output", type=Path, default=None, help="result file (default: see --full)")
    args = _quick.parse(parser, full={})  # under a minute at full size: the same defaults
    results = asyncio.run(main(args.users)) | _quick.commit()
    _quick.output(args, "sim_sync.json").write_text(json.dumps(results, indent=2) + "\n")
    json.dump(results, sys.stdout, indent=2)
    print()

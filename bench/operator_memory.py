"""Benchmark: what one operator process holds in memory for a fleet, and where it goes.

Lean on purpose: Neon and the metadata DB are not the point here, kopf's per-object state is.
Three processes: the Kubernetes emulator (pre-filled with N databases and N/3 budgets,
shaped as the operator leaves them: finalizer, kopf's last-handled annotation, Ready status),
and an operator process running kopf with this operator's settings and the *shape* of its
registry (for databases: resume, create, update on spec, delete and, with ``--timers``, a
``kopf.timer`` per object as handlers/databases.py declares it; for budgets: resume, create,
update, delete), whose handlers do nothing but count.

Measured: the operator's RSS before kopf starts, after every object has been resumed, and
after a settle time (timers spawned, idle workers exited); start-up time; optionally
(``--tracemalloc``) the top allocation sites. Run it twice (with and without ``--timers``)
to see what the per-object timers cost.

Usage: ``.venv/bin/python bench/operator_memory.py [--n 2000] [--timers] [--tracemalloc] [--full]``;
prints the figures and writes ``bench/results/quick/operator_memory[-timers].json``; ``--full``
is 30,000 databases and writes ``bench/results/operator_memory[-timers].json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import multiprocessing
import multiprocessing.connection
import platform
import time
from pathlib import Path
from typing import Any

import httpx

import _quick
from kube_emulator_scale import KINDS, STATUS, _serve, manifest, rss_mb, run_many, say

FINALIZER = "tenantdb.io/finalizer"


def fleet_object(kind: str, i: int) -> dict[str, Any]:
    body = manifest(kind, i)
    if kind != "Secret":
        body["metadata"]["finalizers"] = [FINALIZER]
        annotations = body["metadata"]["annotations"]
        annotations["tenantdb.io/last-handled-configuration"] = annotations.pop(
            "kopf.zalando.org/last-handled-configuration"
        )
    return body


def _operate(
    url: str,
    timers: bool,
    trace: bool,
    settle: float,
    expected: int,
    queueing: tuple[int | None, float],
    conn: Any,
) -> None:
    """The operator process: kopf with the operator's settings and registry shape."""
    import tracemalloc

    if trace:
        tracemalloc.start(8)
    import kopf

    logging.basicConfig(level=logging.WARNING)
    registry = kopf.OperatorRegistry()
    resumed = 0
    done = asyncio.Event()

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # as handlers/main.py configures it
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="tenantdb.io")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="tenantdb.io", key="last-handled-configuration"
        )
        settings.watching.server_timeout = 270
        settings.watching.client_timeout = 300
        settings.watching.connect_timeout = 30
        settings.networking.request_timeout = 60
        settings.posting.reporting_component = "tenantdb"
        settings.posting.enabled = False  # k8s Events would only load the emulator here
        settings.execution.max_workers = 4
        # kopf's defaults: no limit (every object's worker at once), idle workers live 5 s
        settings.queueing.worker_limit, settings.queueing.idle_timeout = queueing

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, insecure=True)

    async def resume(**_: Any) -> None:
        nonlocal resumed
        resumed += 1
        if resumed >= expected:
            done.set()

    async def nothing(**_: Any) -> None:
        return None

    for plural, name in (("globaldatabases", "globaldatabase"), ("workspacedatabases", "workspacedatabase")):
        resource = ("tenantdb.io", "v1alpha1", plural)
        kopf.on.resume(*resource, registry=registry, id=f"{name}-resume")(resume)
        kopf.on.create(*resource, registry=registry, id=f"{name}-create")(nothing)
        kopf.on.update(*resource, registry=registry, id=f"{name}-update", field="spec")(nothing)
        kopf.on.delete(*resource, registry=registry, id=f"{name}-delete")(nothing)
        if timers:  # as handlers/databases.py: one timer per object
            kopf.timer(
                *resource,
                registry=registry,
                id=f"{name}-resync",
                interval=300.0,
                initial_delay=300.0,
                idle=10.0,
            )(nothing)
    budget = ("tenantdb.io", "v1alpha1", "databasebudgets")
    kopf.on.resume(*budget, registry=registry, id="budget-resume")(resume)
    kopf.on.create(*budget, registry=registry, id="budget-create")(nothing)
    kopf.on.update(*budget, registry=registry, id="budget-update", field="spec")(nothing)
    kopf.on.delete(*budget, registry=registry, id="budget-delete")(nothing)

    async def main() -> None:
        import os

        pid = os.getpid()
        before = rss_mb(pid)
        stop = asyncio.Event()
        started = time.monotonic()
        operator = asyncio.create_task(
            kopf.operator(registry=registry, clusterwide=True, standalone=True, stop_flag=stop)
        )
        await done.wait()
        startup = time.monotonic() - started
        after_resume = rss_mb(pid)
        await asyncio.sleep(settle)
        gc.collect()
        settled = rss_mb(pid)
        tasks = len(asyncio.all_tasks())
        top: list[str] = []
        if trace:
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [
                    tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
                    tracemalloc.Filter(False, tracemalloc.__file__),
                ]
            )
            stats = snapshot.statistics("traceback")
            total = sum(stat.size for stat in stats)
            top.append(f"traced total: {total / 2**20:.1f} MB")
            for stat in stats[:12]:
                frames = [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in stat.traceback[-4:]]
                where = " <- ".join(reversed(frames))
                top.append(f"{stat.size / 2**20:7.1f} MB {stat.count:8d} blocks  {where}")
        conn.send(
            {
                "rss_mb_before_kopf": round(before, 1),
                "rss_mb_after_resume": round(after_resume, 1),
                "rss_mb_settled": round(settled, 1),
                "startup_seconds": round(startup, 1),
                "asyncio_tasks": tasks,
                "tracemalloc_top": top,
            }
        )
        stop.set()
        await asyncio.wait_for(operator, timeout=60)

    asyncio.run(main())


async def fill(url: str, n: int, concurrency: int) -> None:
    # No Secrets: the operator neither lists nor watches them (it reads one by name).
    sizes = {"GlobalDatabase": n // 2, "WorkspaceDatabase": n - n // 2, "DatabaseBudget": n // 3}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        for kind, count in sizes.items():
            started = time.monotonic()
            creates = [("POST", KINDS[kind], fleet_object(kind, i)) for i in range(count)]
            await run_many(http, creates, concurrency)
            status = [("PATCH", f"{KINDS[kind]}/t{i:06d}/status", STATUS) for i in range(count)]
            await run_many(http, status, concurrency)
            say(f"filled {count} {kind} in {time.monotonic() - started:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n", type=int, default=2000, help="databases (budgets: n/3, Secrets: n); default 2000, --full 30000"
    )
    parser.add_argument("--timers", action="store_true", help="one kopf.timer per database, as today")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait after start-up")
    parser.add_argument("--worker-limit", type=int, default=None, help="settings.queueing.worker_limit")
    parser.add_argument("--idle-timeout", type=float, default=5.0, help="settings.queueing.idle_timeout")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--output", type=Path, default=None, help="result file (default: see --full)")
    args = _quick.parse(parser, full={"n": 30_000})
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    kube = spawn.Process(target=_serve, args=(theirs,), daemon=True)
    kube.start()
    url = ours.recv()
    assert kube.pid is not None
    try:
        asyncio.run(fill(url, args.n, args.concurrency))
        kube_rss = rss_mb(kube.pid)
        expected = args.n + args.n // 3
        mine, operators = spawn.Pipe()
        operator = spawn.Process(
            target=_operate,
            args=(
                url,
                args.timers,
                args.tracemalloc,
                args.settle,
                expected,
                (args.worker_limit, args.idle_timeout),
                operators,
            ),
            daemon=True,
        )
        operator.start()
        say(f"operator started (pid {operator.pid}), waiting for {expected} resumes")
        figures = mine.recv()
        operator.join(timeout=90)
    finally:
        ours.send("stop")
        kube.join(timeout=10)
    results = {
        "n_databases": args.n,
        "n_budgets": args.n // 3,
        "timers_per_object": args.timers,
        "worker_limit": args.worker_limit,
        "idle_timeout": args.idle_timeout,
        **{k: v for k, v in figures.items() if k != "tracemalloc_top"},
        "kube_emulator_rss_mb": round(kube_rss, 1),
        "python": platform.python_version(),
        **_quick.commit(),
    }
    for line in figures["tracemalloc_top"]:
        print(line)
    print(json.dumps(results, indent=2))
    name = "operator_memory-timers.json" if args.timers else "operator_memory.json"
    output = _quick.output(args, name)
    output.write_text(json.dumps(results | {"tracemalloc_top": figures["tracemalloc_top"]}, indent=2) + "\n")
    say(f"wrote {output}")


if __name__ == "__main__":
    main()

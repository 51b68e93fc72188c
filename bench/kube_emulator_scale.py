"""Benchmark: can the Kubernetes emulator hold a fleet and serve kopf's start-up?

The emulator (``tenantdb.testing.kube.KubernetesEmulator``) runs alone in a child process, so
that its CPU and memory are its own; this process is the client, as kubectl and kopf are.

Measured, for N databases (half GlobalDatabase, half WorkspaceDatabase), N/3 budgets and N
Secrets, objects shaped as the operator leaves them (finalizer, kopf's last-handled
annotation, a Ready status, a Secret of ~10 keys):

- create rate, by tenth of the run: a per-request cost that grows with the number of objects
  held (quadratic total) shows as a falling rate;
- status-patch rate at full size (kopf's writes);
- kopf's start-up: list each kind, then a watch from the list's resourceVersion, and how long
  until a write made after the list is streamed to that watch; the same list in pages of 500,
  as the operator has kopf list (each page used to cost a scan of every stored object);
- the emulator process's RSS.

Usage: ``.venv/bin/python bench/kube_emulator_scale.py [--n 3000] [--concurrency 16] [--full]``;
prints the figures and writes ``bench/results/quick/kube_emulator_scale.json``; ``--full`` is
30,000 databases (about 4 minutes) and writes ``bench/results/kube_emulator_scale.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.connection
import platform
import time
from pathlib import Path
from typing import Any

import httpx

import _quick

GROUP_PATH = "/apis/tenantdb.io/v1alpha1/namespaces/default"
PAGE_SIZE = 500  # TENANTDB_LIST_PAGE_SIZE's default: kopf's chunk_size
KINDS = {
    "GlobalDatabase": f"{GROUP_PATH}/globaldatabases",
    "WorkspaceDatabase": f"{GROUP_PATH}/workspacedatabases",
    "DatabaseBudget": f"{GROUP_PATH}/databasebudgets",
    "Secret": "/api/v1/namespaces/default/secrets",
}
_START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", flush=True)


def _serve(conn: multiprocessing.connection.Connection) -> None:
    """The child: the emulator on a free port until the parent says stop."""

    async def main() -> None:
        import kmock

        from tenantdb.testing.kube import KubernetesEmulator

        emulator = KubernetesEmulator()
        async with emulator, kmock.Server(emulator) as server:
            conn.send(str(server.url).rstrip("/"))
            while not await asyncio.to_thread(conn.poll, 0.5):
                pass
            conn.recv()

    asyncio.run(main())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def manifest(kind: str, i: int) -> dict[str, Any]:
    name = f"t{i:06d}"
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if kind == "Secret":
        data = {
            key: "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" * 3 for key in ("a", "b", "c", "d", "e", "f", "g")
        }
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": data}
    spec: dict[str, Any] = {"userId": f"user-{i}"}
    if kind == "WorkspaceDatabase":
        spec["workspaceId"] = f"ws-{i}"
    if kind != "DatabaseBudget":
        spec |= {"autoscaling": {"minCu": 0.25, "maxCu": 1}, "suspendTimeoutSeconds": 300}
        meta["labels"] = {"tenantdb.io/managed": "true"}
    else:
        spec["tier"] = "free"
    meta["finalizers"] = ["tenantdb.io/finalizer"]
    meta["annotations"] = {"kopf.zalando.org/last-handled-configuration": json.dumps({"spec": spec})}
    return {"apiVersion": "tenantdb.io/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}


STATUS = {
    "status": {
        "phase": "Ready",
        "projectId": "falling-pond-12345678",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Provisioned",
                "message": "ready",
                "lastTransitionTime": "2026-12-02T00:00:00Z",
            }
        ],
    }
}


async def run_many(
    http: httpx.AsyncClient, requests: list[tuple[str, str, Any]], concurrency: int
) -> list[float]:
    """Send them ``concurrency`` at a time; returns each one's finish time."""
    queue = list(reversed(requests))
    done: list[float] = []

    async def worker() -> None:
        while queue:
            method, path, body = queue.pop()
            headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else None
            response = await http.request(method, path, json=body, headers=headers)
            if response.status_code >= 400:
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:200]}")
            done.append(time.monotonic())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def rates_by_tenth(started: float, finished: list[float]) -> list[float]:
    """Requests per second in each tenth of the run (by count)."""
    finished = sorted(finished)
    tenth = max(1, len(finished) // 10)
    rates, previous = [], started
    for first in range(0, len(finished) - tenth + 1, tenth):
        last = finished[first + tenth - 1]
        rates.append(round(tenth / max(1e-9, last - previous), 1))
        previous = last
    return rates


async def list_in_pages(http: httpx.AsyncClient, path: str, limit: int) -> tuple[float, int]:
    """kopf's start-up list as the operator configures it (``chunk_size``): seconds, pages."""
    started = time.monotonic()
    token, pages = "", 0
    while True:
        params = {"limit": str(limit)} | ({"continue": token} if token else {})
        response = await http.get(path, params=params)
        response.raise_for_status()
        pages += 1
        token = response.json()["metadata"].get("continue") or ""
        if not token:
            return time.monotonic() - started, pages


async def startup(http: httpx.AsyncClient, path: str) -> dict[str, float]:
    """kopf's start-up for one kind: list, then watch from the list's resourceVersion."""
    started = time.monotonic()
    response = await http.get(path)
    response.raise_for_status()
    listing = response.json()
    listed = time.monotonic() - started
    version = listing["metadata"]["resourceVersion"]
    marker = f"late-{time.monotonic_ns()}"
    seen = asyncio.Event()

    async def watch() -> None:
        async with http.stream("GET", path, params={"watch": "true", "resourceVersion": version}) as stream:
            async for line in stream.aiter_lines():
                if marker in line:
                    seen.set()
                    return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)  # the watch is open
    written = time.monotonic()
    kind = next(k for k, p in KINDS.items() if p == path)
    created = await http.post(
        path, json=manifest(kind, 999_999) | {"metadata": {"name": marker, "namespace": "default"}}
    )
    created.raise_for_status()
    await asyncio.wait_for(seen.wait(), timeout=120)
    watcher.cancel()
    await http.delete(f"{path}/{marker}")
    paged, pages = await list_in_pages(http, path, PAGE_SIZE)
    return {
        "items": len(listing["items"]),
        "list_seconds": round(listed, 3),
        f"pages_of_{PAGE_SIZE}": pages,
        f"list_in_pages_of_{PAGE_SIZE}_seconds": round(paged, 3),
        "list_mb": round(len(response.content) / 2**20, 1),
        "watch_event_seconds": round(time.monotonic() - written, 3),
    }


async def bench(n: int, concurrency: int, pid: int, url: str) -> dict[str, Any]:
    sizes = {"GlobalDatabase": n // 2, "WorkspaceDatabase": n - n // 2, "DatabaseBudget": n // 3, "Secret": n}
    results: dict[str, Any] = {"n_databases": n, "n_budgets": n // 3, "n_secrets": n, "create": {}}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        results["rss_mb_empty"] = round(rss_mb(pid), 1)
        for kind, count in sizes.items():
            started = time.monotonic()
            finished = await run_many(
                http, [("POST", KINDS[kind], manifest(kind, i)) for i in range(count)], concurrency
            )
            took = time.monotonic() - started
            rates = rates_by_tenth(started, finished)
            results["create"][kind] = {
                "count": count,
                "seconds": round(took, 1),
                "per_second": round(count / took, 1),
                "per_second_by_tenth": rates,
            }
            say(f"created {count} {kind}: {count / took:.0f}/s (by tenth: {rates}), RSS {rss_mb(pid):.0f} MB")
        sample = min(2000, n // 2)
        started = time.monotonic()
        patches = [("PATCH", f"{KINDS['GlobalDatabase']}/t{i:06d}/status", STATUS) for i in range(sample)]
        await run_many(http, patches, concurrency)
        took = time.monotonic() - started
        results["status_patch_per_second"] = round(sample / took, 1)
        say(f"status patches at full size: {sample / took:.0f}/s")
        results["startup"] = {}
        for kind, path in KINDS.items():
            results["startup"][kind] = figures = await startup(http, path)
            say(f"start-up {kind}: {figures}")
        results["rss_mb"] = round(rss_mb(pid), 1)
        say(f"emulator RSS: {results['rss_mb']} MB")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n", type=int, default=3000, help="databases (budgets: n/3, Secrets: n); default 3000, --full 30000"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--output", type=Path, default=None, help="result file (default: see --full)")
    args = _quick.parse(parser, full={"n": 30_000})
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(target=_serve, args=(theirs,), daemon=True)
    child.start()
    url = ours.recv()
    assert child.pid is not None
    try:
        results = asyncio.run(bench(args.n, args.concurrency, child.pid, url))
    finally:
        ours.send("stop")
        child.join(timeout=10)
    results |= {"python": platform.python_version(), "concurrency": args.concurrency, **_quick.commit()}
    output = _quick.output(args, "kube_emulator_scale.json")
    output.write_text(json.dumps(results, indent=2) + "\n")
    say(f"wrote {output}")


if __name__ == "__main__":
    main()

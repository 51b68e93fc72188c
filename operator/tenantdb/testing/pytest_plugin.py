"""pytest fixtures for a platform's own tests: ``pip install tenantdb[testing]`` and use them.

Registered through the ``pytest11`` entry point ``tenantdb``, so nothing needs importing:

- ``postgres_server`` (session): a real PostgreSQL server, ``PostgresServer``.
- ``neon_emulator`` (session): the Neon API v2 emulator on that server, ``NeonEmulator``,
  served from a thread of its own (any test, sync or async, can call it over HTTP).
- ``kube_apiserver`` (session): a real Kubernetes API server, ``KubeApiServer`` (etcd +
  kube-apiserver + the garbage collector), cluster admin through ``.client()`` /
  ``.kubeconfig``. Its binaries come from ``KUBEBUILDER_ASSETS`` or ``make kube-assets``;
  without them the tests that use it are skipped, except under ``CI=true``, where a missing
  binary fails the run instead of passing it quietly.

Heavy imports happen inside the fixtures: loading the plugin costs nothing.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tenantdb.testing.apiserver import KubeApiServer
    from tenantdb.testing.neon import NeonEmulator
    from tenantdb.testing.postgres import PostgresServer

__all__ = ["kube_apiserver", "neon_emulator", "postgres_server"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server (TLS and SCRAM where the binaries allow) for the session."""
    from tenantdb.testing.postgres import PostgresServer

    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def neon_emulator(postgres_server: PostgresServer) -> Iterator[NeonEmulator]:
    """The Neon API emulator for the session; ``.base_url``, ``.api_key``, ``.org_id``."""
    from tenantdb.testing.neon import NeonEmulator

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="neon-emulator", daemon=True)
    thread.start()
    emulator = NeonEmulator(postgres_admin_url=postgres_server.admin_url)
    try:
        asyncio.run_coroutine_threadsafe(emulator.start(), loop).result(timeout=60)
        yield emulator
    finally:
        asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture(scope="session")
def kube_apiserver() -> Iterator[KubeApiServer]:
    """A real Kubernetes API server for the session (skipped without binaries, failed in CI)."""
    from tenantdb.testing.apiserver import AssetsNotFoundError, KubeApiServer, find_kube_assets

    try:
        assets = find_kube_assets()
    except AssetsNotFoundError as exc:
        if _in_ci():
            pytest.fail(f"CI=true and {exc}", pytrace=False)
        pytest.skip(str(exc))
    with KubeApiServer(assets=assets) as server:
        yield server

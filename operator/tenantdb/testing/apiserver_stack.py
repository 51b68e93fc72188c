"""``LocalStack`` on a real Kubernetes API server, with the operator as real processes.

``ApiServerStack`` keeps LocalStack's PostgreSQL, Neon emulator, metadata DB and test-side
helpers (``apply``, ``get``, ``wait_ready``, ``metadata_query``, ...), and swaps the Kubernetes
emulator for a ``KubeApiServer``: every test-side call is made as cluster admin, in a
namespace of its own. The operator runs as ``tenantdb run`` in child processes, configured
from the environment like a pod, with a kubeconfig for whatever identity the test chooses
(by default: cluster admin; pass ``operator_access`` for a ServiceAccount token). Several
operators can run at once (kopf peering); each can be stopped gently or killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import psycopg
from pydantic import SecretStr

from tenantdb.api import GROUP, KINDS, VERSION
from tenantdb.config import Settings
from tenantdb.testing.apiserver import ClientAccess, KubeApiServer
from tenantdb.testing.neon import EmulatorOptions, NeonEmulator
from tenantdb.testing.postgres import PostgresServer, free_port
from tenantdb.testing.stack import LocalStack

__all__ = ["ApiServerStack", "OperatorProcess", "settings_environment"]

# Variables of the caller's environment that would override the stack's settings (the names
# without the TENANTDB_ prefix win in Settings) or point the operator at another cluster.
_OUTSIDE_SETTINGS = frozenset({"KUBECONFIG", "ENCRYPTION_KEY", "NEON_API_KEY", "NEON_ORG_ID"})


def settings_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as the environment ``tenantdb run`` reads them from (``TENANTDB_*``)."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list):
            value = ",".join(str(item) for item in value)
        elif hasattr(value, "value"):  # enums
            value = value.value
        env[f"TENANTDB_{name.upper()}"] = str(value)
    return env


class OperatorProcess:
    """One ``tenantdb run`` child process; its output goes to ``log_path``."""

    def __init__(self, *, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tenantdb.cli import main; sys.exit(main(['run']))"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    async def wait_started(self, timeout: float = 60.0) -> None:
        """Until the start-up handler has run (the clients are open, Neon's key checked)."""
        deadline = time.monotonic() + timeout
        while "tenantdb started" not in self.log:
            if not self.running:
                raise RuntimeError(f"the operator exited with {self.process.returncode}:\n{self.log[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the operator did not start within {timeout:.0f} s:\n{self.log[-3000:]}")
            await asyncio.sleep(0.2)

    async def stop(self, *, abruptly: bool = False, grace: float = 30.0) -> None:
        """SIGTERM (kopf finishes its handlers and releases its peering) or, ``abruptly``, SIGKILL."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL if abruptly else signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                await asyncio.to_thread(self.process.wait, 10)
        self._log.close()


class ApiServerStack(LocalStack):
    """PostgreSQL + Neon emulator + a real API server (+ operator processes, on demand)."""

    def __init__(
        self,
        server: KubeApiServer,
        *,
        postgres: PostgresServer | None = None,
        neon_options: EmulatorOptions | None = None,
        settings_overrides: dict[str, Any] | None = None,
        operator_access: ClientAccess | None = None,
    ) -> None:
        super().__init__(postgres=postgres, neon_options=neon_options, settings_overrides=settings_overrides)
        self.server = server
        self.namespace = f"t-{secrets.token_hex(4)}"
        self.operator_access = operator_access
        self.operators: list[OperatorProcess] = []
        self._folder: Path | None = None

    async def __aenter__(self) -> ApiServerStack:
        if self._own_postgres:
            await asyncio.to_thread(self.postgres.start)
        async with await psycopg.AsyncConnection.connect(self.postgres.admin_url, autocommit=True) as conn:
            await conn.execute(
                psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(self.metadata_db))
            )
        self.neon = NeonEmulator(
            postgres_admin_url=self.postgres.admin_url, options=self.neon_options, ssl=self.postgres.ssl
        )
        await self.neon.start()
        self._http = self.server.async_client()
        response = await self._http.post("/api/v1/namespaces", json={"metadata": {"name": self.namespace}})
        response.raise_for_status()
        assert self.server.folder is not None
        self._folder = self.server.folder / self.namespace
        self._folder.mkdir()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._keep_logs()
        try:
            await self._delete_everything()
        finally:
            await self.stop_operator()
            await self._release_leftovers()
            await super().__aexit__(*exc)

    @property
    def kube_url(self) -> str:
        return self.server.url

    async def start_operator(self, **overrides: Any) -> None:
        """Start one operator process (``settings_overrides`` + ``overrides``) and wait for its start-up."""
        operator = self.spawn_operator(**overrides)
        await operator.wait_started()

    def spawn_operator(
        self, *, access: ClientAccess | None = None, name: str | None = None, **overrides: Any
    ) -> OperatorProcess:
        """Start one more operator process without waiting; ``access`` overrides ``operator_access``."""
        assert self._folder is not None
        name = name or f"operator-{len(self.operators)}"
        # A port of its own for each process's liveness endpoint: kopf reads port 0 as "none
        # given" and binds 80, so the second operator on the machine would fail to start.
        values = {"health_port": free_port(), **self.settings_overrides, **overrides}
        settings = self.settings().model_copy(update=values)
        identity = access or self.operator_access or self.server.admin
        kubeconfig = identity.write_kubeconfig(self._folder / f"{name}.kubeconfig")
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TENANTDB_", "KUBERNETES_")) and key not in _OUTSIDE_SETTINGS
        }
        env.update(settings_environment(settings))
        env["KUBECONFIG"] = str(kubeconfig)
        operator = OperatorProcess(env=env, log_path=self._folder / f"{name}.log")
        self.operators.append(operator)
        return operator

    async def stop_operator(self, *, abruptly: bool = False) -> None:
        """Stop every operator process this stack started."""
        for operator in self.operators:
            await operator.stop(abruptly=abruptly)
        self.operators.clear()

    @property
    def operator_logs(self) -> str:
        return "\n".join(operator.log for operator in self.operators)

    async def _keep_logs(self) -> None:
        """With ``TENANTDB_TEST_OPERATOR_LOGS`` set to a folder: every operator process's log and
        the namespace's resources as they ended, kept there (a folder per stack) for a run
        that failed by chance to be read after the API server's temporary folder is gone.
        No Secret is kept: the resources hold only the names of theirs."""
        keep = os.environ.get("TENANTDB_TEST_OPERATOR_LOGS")
        if not keep or self._folder is None or self._http is None:
            return
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}"
        resources = {plural: (await self._http.get(f"{base}/{plural}")).json() for plural in self._plurals()}
        target = Path(keep) / f"{time.strftime('%Y%m%dT%H%M%S')}-{self.namespace}"
        target.mkdir(parents=True)
        (target / "resources.json").write_text(json.dumps(resources, indent=1))
        for log in self._folder.glob("*.log"):
            shutil.copy(log, target / log.name)

    # -- clean-up: leave the shared API server as it was found ---------------------------------------
    def _plurals(self) -> list[str]:
        return [kind.plural for kind in KINDS]

    async def _delete_everything(self, timeout: float = 30.0) -> None:
        """Delete this namespace's resources while the operator still runs (it releases them)."""
        assert self._http is not None
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}"
        for plural in self._plurals():
            await self._http.delete(f"{base}/{plural}")
        if not any(operator.running for operator in self.operators):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = [
                len((await self._http.get(f"{base}/{p}")).json().get("items", [])) for p in self._plurals()
            ]
            if not any(counts):
                return
            await asyncio.sleep(0.5)

    async def _release_leftovers(self) -> None:
        """Drop the finalizers nobody will release any more, then the namespace."""
        assert self._http is not None
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}"
        for plural in self._plurals():
            response = await self._http.get(f"{base}/{plural}")
            for item in response.json().get("items", []):
                await self._http.patch(
                    f"{base}/{plural}/{item['metadata']['name']}",
                    json={"metadata": {"finalizers": None}},
                    headers={"Content-Type": "application/merge-patch+json"},
                )
        await self._http.delete(f"/api/v1/namespaces/{self.namespace}")

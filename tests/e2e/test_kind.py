"""The real thing on a throwaway kind cluster: build the images, install the chart with the
in-cluster Neon emulator, apply manifests/samples/, see every object become Ready with its
connection Secret, delete them, see Secrets and emulated Neon projects go, remove the cluster.

Opt-in: ``make e2e`` (it sets ``TENANTDB_E2E=1``) with Docker (an engine, not only the client), kind and
kubectl installed. ``TENANTDB_E2E_KEEP=1`` keeps the cluster for a post-mortem.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.cluster import KindCluster

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "tenantdb-system"
RELEASE = "tenantdb"
IMAGE = "tenantdb:e2e"
EMULATOR_IMAGE = "tenantdb:e2e-emulator"
POSTGRES_IMAGE = "postgres:17.6-bookworm"
SAMPLES = ROOT / "manifests" / "samples"
SHORT = {"GlobalDatabase": "gdb", "WorkspaceDatabase": "wdb", "DatabaseBudget": "dbb"}


def _why_not() -> str | None:
    if os.environ.get("TENANTDB_E2E") != "1":
        return "the real-cluster suite is opt-in: `make e2e` sets TENANTDB_E2E=1 (needs Docker and kind)"
    for tool in ("docker", "kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    info = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if info.returncode != 0:
        return "no Docker engine answers (`docker info` failed)"
    return None


def _docker(*args: str, timeout: float = 1800) -> None:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)
    assert result.returncode == 0, f"docker {args[0]} failed:\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindCluster]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    _docker("build", "--target", "runtime", "-t", IMAGE, str(ROOT))
    _docker("build", "--target", "emulator", "-t", EMULATOR_IMAGE, str(ROOT))
    _docker("pull", POSTGRES_IMAGE, timeout=600)
    kind = KindCluster(workdir=tmp_path_factory.mktemp("kind"))
    try:
        kind.create()
        kind.load_images(IMAGE, EMULATOR_IMAGE, POSTGRES_IMAGE)
        yield kind
    finally:
        if os.environ.get("TENANTDB_E2E_KEEP") == "1":
            print(f"\nkept kind cluster {kind.name}: KUBECONFIG={kind.kubeconfig}")
        else:
            kind.delete()


@pytest.fixture(scope="module")
def installed(cluster: KindCluster) -> KindCluster:
    """The chart, installed with Helm's engine (helm-python-sdk) against the kind cluster only."""
    import helm_python as helm

    values: dict[str, Any] = {
        "image": {"repository": "tenantdb", "tag": "e2e", "pullPolicy": "Never"},
        "emulator": {"enabled": True, "image": {"tag": "e2e-emulator", "pullPolicy": "Never"}},
        # A throwaway key for a throwaway cluster.
        "createSecret": {"enabled": True, "encryptionKey": secrets.token_hex(32)},
        "migrate": {"enabled": True},
        "config": {"logFormat": "text", "consumptionSyncIntervalSeconds": 30, "resyncIntervalSeconds": 30},
    }
    cluster.run("true")  # the guard, before Helm touches anything
    with helm.Config(
        kubeconfig_path=str(cluster.kubeconfig), kube_context=cluster.context, namespace=NAMESPACE
    ) as config:
        config.install(
            str(ROOT / "charts" / "tenantdb"),
            RELEASE,
            values,
            namespace=NAMESPACE,
            create_namespace=True,
            wait="watcher",
            timeout=600,
        )
    for deployment in ("tenantdb", "tenantdb-neon-emulator", "tenantdb-emulator-postgres"):
        cluster.kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{deployment}", "--timeout=300s")
    return cluster


def _samples(cluster: KindCluster) -> list[dict[str, Any]]:
    rendered = cluster.kubectl("kustomize", str(SAMPLES)).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc and doc["kind"] in SHORT]


def _get(cluster: KindCluster, obj: dict[str, Any]) -> dict[str, Any] | None:
    meta = obj["metadata"]
    result = cluster.kubectl(
        "-n",
        meta.get("namespace", "default"),
        "get",
        SHORT[obj["kind"]],
        meta["name"],
        "-o",
        "json",
        check=False,
    )
    return json.loads(result.stdout) if result.returncode == 0 else None


def _eventually(what: str, check: Any, timeout: float = 300, every: float = 3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def _ready(obj: dict[str, Any] | None) -> bool:
    conditions = (obj or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _emulated_projects(cluster: KindCluster) -> list[Any]:
    """Ask the emulator itself (from inside its pod) which projects exist."""
    script = (
        "import json, os, urllib.request;"
        "r = urllib.request.Request('http://127.0.0.1:8181/api/v2/projects',"
        " headers={'Authorization': 'Bearer ' + os.environ['NEON_API_KEY']});"
        "print(json.dumps(json.load(urllib.request.urlopen(r))['projects']))"
    )
    out = cluster.kubectl(
        "-n", NAMESPACE, "exec", "deploy/tenantdb-neon-emulator", "--", "python", "-c", script
    )
    projects: list[Any] = json.loads(out.stdout)
    return projects


def test_samples_become_ready_and_clean_up(installed: KindCluster) -> None:
    cluster = installed
    samples = _samples(cluster)
    assert samples, "manifests/samples/ has nothing to apply"
    cluster.kubectl("apply", "-k", str(SAMPLES))

    secrets_made: list[tuple[str, str]] = []
    for obj in samples:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        live = _eventually(f"{name} Ready", lambda obj=obj: (o := _get(cluster, obj)) and _ready(o) and o)
        if obj["kind"] != "DatabaseBudget":
            assert live["status"]["phase"] == "Ready", name
            secret = live["status"]["secretName"]
            namespace = obj["metadata"].get("namespace", "default")
            data = json.loads(cluster.kubectl("-n", namespace, "get", "secret", secret, "-o", "json").stdout)[
                "data"
            ]
            assert "DATABASE_URL_ENCRYPTED" in data, name
            secrets_made.append((namespace, secret))
    assert len(_emulated_projects(cluster)) == len(secrets_made)

    # Connection strings never reach the operator's logs.
    logs = cluster.kubectl("-n", NAMESPACE, "logs", "deploy/tenantdb", "--all-containers").stdout
    assert "postgresql://" not in logs
    assert "postgres://" not in logs

    cluster.kubectl("delete", "-k", str(SAMPLES), "--wait=true", "--timeout=300s")
    for obj in samples:
        _eventually(
            f"{obj['kind']}/{obj['metadata']['name']} gone", lambda obj=obj: _get(cluster, obj) is None
        )
    for namespace, secret in secrets_made:
        _eventually(
            f"Secret {secret} garbage-collected",
            lambda n=namespace, s=secret: (
                cluster.kubectl("-n", n, "get", "secret", s, check=False).returncode != 0
            ),
        )
    _eventually("every emulated Neon project deleted", lambda: _emulated_projects(cluster) == [])

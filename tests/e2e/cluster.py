"""A kind cluster that this test session made, and the guard that keeps the suite on it.

Every command the suite runs goes through :class:`KindCluster`, which passes its own
kubeconfig file (never ``~/.kube/config`` or ``$KUBECONFIG``) and first checks, each time,
that the file still names only the context this session created, on a local API server.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

__all__ = ["ForeignClusterError", "KindCluster", "assert_own_context"]

NAME_PREFIX = "tenantdb-e2e-"
_CREATED: set[str] = set()  # kind clusters created by this process


class ForeignClusterError(RuntimeError):
    """The kubeconfig points somewhere this suite did not create: refuse to touch it."""


def assert_own_context(kubeconfig: Path, cluster_name: str, *, created: set[str] | None = None) -> None:
    """Refuse unless ``kubeconfig`` holds exactly the kind context of a cluster we created."""
    created = _CREATED if created is None else created
    if not cluster_name.startswith(NAME_PREFIX) or cluster_name not in created:
        raise ForeignClusterError(f"cluster {cluster_name!r} was not created by this test session")
    try:
        config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text()) or {}
    except OSError as exc:
        raise ForeignClusterError(f"cannot read {kubeconfig}: {exc}") from exc
    expected = f"kind-{cluster_name}"
    contexts = [context["name"] for context in config.get("contexts", [])]
    if contexts != [expected] or config.get("current-context") != expected:
        raise ForeignClusterError(f"{kubeconfig} names contexts {contexts}, expected only {expected!r}")
    for cluster in config.get("clusters", []):
        host = urlsplit(cluster["cluster"]["server"]).hostname
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ForeignClusterError(f"API server {host!r} is not a local kind cluster")


@dataclass
class KindCluster:
    """A kind cluster owned by this session; ``delete`` removes it."""

    workdir: Path
    name: str = field(default_factory=lambda: NAME_PREFIX + secrets.token_hex(3))

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def create(self) -> None:
        _CREATED.add(self.name)
        self.run(
            "kind",
            "create",
            "cluster",
            "--name",
            self.name,
            "--kubeconfig",
            str(self.kubeconfig),
            "--wait",
            "180s",
            guard=False,
            timeout=600,
        )
        assert_own_context(self.kubeconfig, self.name)

    def delete(self) -> None:
        if self.name in _CREATED:
            self.run(
                "kind",
                "delete",
                "cluster",
                "--name",
                self.name,
                "--kubeconfig",
                str(self.kubeconfig),
                guard=False,
                check=False,
                timeout=300,
            )
            _CREATED.discard(self.name)

    def load_images(self, *images: str) -> None:
        self.run("kind", "load", "docker-image", *images, "--name", self.name, guard=False, timeout=600)

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 300, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "kubectl",
            "--kubeconfig",
            str(self.kubeconfig),
            "--context",
            self.context,
            *args,
            check=check,
            timeout=timeout,
            stdin=stdin,
        )

    def run(
        self,
        *command: str,
        guard: bool = True,
        check: bool = True,
        timeout: float = 300,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        if guard:
            assert_own_context(self.kubeconfig, self.name)
        result = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
            input=stdin,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command[:4])} ... failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
        return result

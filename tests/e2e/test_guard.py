"""The e2e suite's guard refuses any kube context it did not create (runs everywhere, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.cluster import ForeignClusterError, assert_own_context

NAME = "tenantdb-e2e-abc123"


def kubeconfig(path: Path, *, contexts: list[str], current: str, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": c, "cluster": {"server": server}} for c in contexts],
                "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in contexts],
                "users": [{"name": c, "user": {}} for c in contexts],
                "current-context": current,
            }
        )
    )
    return path


def test_accepts_the_context_it_created(tmp_path: Path) -> None:
    config = kubeconfig(
        tmp_path / "k", contexts=[f"kind-{NAME}"], current=f"kind-{NAME}", server="https://127.0.0.1:40123"
    )
    assert_own_context(config, NAME, created={NAME})


@pytest.mark.parametrize(
    ("contexts", "current", "server", "created", "complaint"),
    [
        ([f"kind-{NAME}"], f"kind-{NAME}", "https://127.0.0.1:1", set(), "not created by this test session"),
        (["prod"], "prod", "https://127.0.0.1:1", {NAME}, "expected only"),
        ([f"kind-{NAME}", "prod"], f"kind-{NAME}", "https://127.0.0.1:1", {NAME}, "expected only"),
        ([f"kind-{NAME}"], f"kind-{NAME}", "https://k8s.example.com:443", {NAME}, "not a local kind cluster"),
    ],
)
def test_refuses_anything_else(
    tmp_path: Path, contexts: list[str], current: str, server: str, created: set[str], complaint: str
) -> None:
    config = kubeconfig(tmp_path / "k", contexts=contexts, current=current, server=server)
    with pytest.raises(ForeignClusterError, match=complaint):
        assert_own_context(config, NAME, created=created)


def test_refuses_a_cluster_name_outside_the_suites_prefix(tmp_path: Path) -> None:
    config = kubeconfig(
        tmp_path / "k", contexts=["kind-kind"], current="kind-kind", server="https://127.0.0.1:1"
    )
    with pytest.raises(ForeignClusterError):
        assert_own_context(config, "kind", created={"kind"})

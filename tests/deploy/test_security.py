"""Every pod the chart or the overlays make meets Pod Security "restricted"."""

from __future__ import annotations

from typing import Any

from tests.deploy.support import Rendered, containers


def assert_restricted(workload: dict[str, Any], pod: dict[str, Any]) -> None:
    """The "restricted" profile of the Pod Security Standards, plus a read-only root."""
    where = f"{workload['kind']}/{workload['metadata']['name']}"
    for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(forbidden), f"{where}: {forbidden}"
    pod_context = pod.get("securityContext", {})
    assert pod_context.get("runAsNonRoot") is True, where
    assert pod_context.get("runAsUser", 1) != 0, where
    assert pod_context.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for volume in volumes.values():
        assert "hostPath" not in volume, f"{where}: hostPath volume {volume['name']}"
    for container in containers(pod):
        ctx = container.get("securityContext", {})
        name = f"{where} container {container['name']}"
        assert ctx.get("allowPrivilegeEscalation") is False, name
        assert ctx.get("privileged", False) is False, name
        assert ctx.get("readOnlyRootFilesystem") is True, name
        assert ctx.get("capabilities", {}).get("drop") == ["ALL"], name
        assert not ctx.get("capabilities", {}).get("add"), name
        assert ctx.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True, name
        assert ctx.get("runAsUser", pod_context.get("runAsUser", 1)) != 0, name
        assert (
            ctx.get("seccompProfile", pod_context.get("seccompProfile", {})).get("type") == "RuntimeDefault"
        )
        for port in container.get("ports", []):
            assert "hostPort" not in port, name
        # A read-only root needs somewhere to write: /tmp is an emptyDir.
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{name}: no writable /tmp"
        assert "emptyDir" in volumes[mounts["/tmp"]], name
        assert container.get("resources", {}).get("limits", {}).get("memory"), f"{name}: no memory limit"


def test_chart_pods_are_restricted(rendered: Rendered) -> None:
    workloads = list(rendered.pod_templates())
    assert workloads
    for workload, pod in workloads:
        assert_restricted(workload, pod)


def test_overlay_pods_are_restricted(kustomized: Rendered) -> None:
    workloads = list(kustomized.pod_templates())
    assert workloads
    for workload, pod in workloads:
        assert_restricted(workload, pod)


def test_operator_runs_as_the_images_numeric_user(rendered: Rendered) -> None:
    for workload, pod in rendered.pod_templates():
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in ("operator", "neon-emulator"):
            assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
            assert pod["securityContext"]["runAsGroup"] == 10001


def test_only_the_operator_gets_an_api_token(rendered: Rendered) -> None:
    for workload, pod in rendered.pod_templates():
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        assert pod["automountServiceAccountToken"] is (component == "operator"), workload["metadata"]["name"]

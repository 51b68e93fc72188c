"""The chart's Grafana dashboard: built with Grafana's foundation SDK (tools/grafana), committed
as built, shipped in a ConfigMap Grafana's sidecar picks up, reading only the operator's metrics."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from tests.deploy.promql import exported_names, metric_names
from tests.deploy.support import ROOT, Rendered


def builder() -> ModuleType:
    path = ROOT / "tools" / "grafana" / "dashboard.py"
    spec = importlib.util.spec_from_file_location("tenantdb_dashboard", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_the_committed_dashboard_is_what_the_builder_makes() -> None:
    dashboard = builder()
    assert dashboard.OUTPUT.read_text() == dashboard.rendered(), (
        "charts/tenantdb/dashboards/tenantdb.json is stale: run `make dashboard`"
    )


def test_every_query_reads_only_metrics_the_operator_exports() -> None:
    dashboard = builder().build_dashboard()
    queries = [(p["title"], t["expr"]) for p in panels(dashboard) for t in p["targets"]]
    assert len(queries) >= 20
    for title, expr in queries:
        unknown = metric_names(expr) - exported_names()
        assert not unknown, (
            f"panel {title!r} reads {unknown}, which operator/tenantdb/metrics.py does not export"
        )


def test_the_dashboard_shows_what_an_operator_of_the_fleet_asks() -> None:
    dashboard = builder().build_dashboard()
    read = {name for p in panels(dashboard) for t in p["targets"] for name in metric_names(t["expr"])}
    for wanted in (
        "tenantdb_fleet_resources",  # fleet size
        "tenantdb_time_to_ready_seconds_count",  # signups
        "tenantdb_time_to_ready_seconds_bucket",  # time to Ready
        "tenantdb_neon_api_calls_total",  # Neon calls by route and outcome
        "tenantdb_budget_spend_ratio_bucket",  # spend against limits
        "tenantdb_budgets_over_limit",  # suspended users
        "tenantdb_orphaned_projects",  # orphans
        "tenantdb_fleet_pass_duration_seconds_sum",  # pass length
    ):
        assert wanted in read, wanted
    for panel in panels(dashboard):
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]
        assert all(refs), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert dashboard["templating"]["list"][0]["name"] == "datasource"


def test_the_configmap_carries_the_dashboard_for_grafanas_sidecar(
    rendered_sets: Callable[[str], Rendered], render: Callable[..., Rendered]
) -> None:
    configmap = rendered_sets("monitoring").one("ConfigMap", "tenantdb-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Databases"}
    assert json.loads(configmap["data"]["tenantdb.json"]) == builder().build_dashboard()
    elsewhere = render({"metrics": {"dashboard": {"enabled": True, "namespace": "grafana"}}})
    assert elsewhere.one("ConfigMap", "tenantdb-dashboard")["metadata"]["namespace"] == "grafana"

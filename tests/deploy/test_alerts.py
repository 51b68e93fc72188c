"""The chart's alerts: rendered only when asked, each with a for, a severity, a summary and a
runbook in the README, reading only the operator's metrics, and unit tested with Prometheus'
own ``promtool test rules`` (tests/deploy/alerts/)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql import exported_names, metric_names
from tests.deploy.support import ROOT, Rendered

ALERT_TESTS = Path(__file__).parent / "alerts" / "tenantdb-alerts.test.yaml"
BUILD = ROOT / "tools" / "promtool" / "build.sh"


def rules(rendered: Rendered) -> list[dict[str, Any]]:
    rule = rendered.one("PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_no_rules_and_no_dashboard_unless_asked(rendered_sets: Callable[[str], Rendered]) -> None:
    default = rendered_sets("default")
    assert default.kinds("PrometheusRule") == []
    assert [c for c in default.kinds("ConfigMap") if c["metadata"]["name"].endswith("-dashboard")] == []


def test_every_alert_has_a_for_a_severity_a_summary_and_a_runbook(
    rendered_sets: Callable[[str], Rendered],
) -> None:
    alerts = rules(rendered_sets("monitoring"))
    names = [a["alert"] for a in alerts]
    assert names == sorted(set(names), key=names.index), "alert names are unique"
    assert {
        "TenantdbNoActiveReplica",
        "TenantdbConsumptionSyncStale",
        "TenantdbNeonRefusingCalls",
        "TenantdbNeonThrottled",
        "TenantdbNeonFailing",
        "TenantdbFleetPassOverInterval",
        "TenantdbReconcilesFailing",
        "TenantdbHardStopFailed",
        "TenantdbOrphanedProjects",
    } == set(names)
    readme = (ROOT / "README.md").read_text()
    on_call = readme[readme.index("## On call") :]
    for alert in alerts:
        assert re.fullmatch(r"[0-9]+[smh]", alert["for"]), alert["alert"]
        assert alert["labels"]["severity"] in ("critical", "warning"), alert["alert"]
        assert alert["labels"]["team"] == "platform"  # metrics.prometheusRule.alertLabels
        assert alert["annotations"]["summary"], alert["alert"]
        anchor = alert["alert"].lower()
        assert alert["annotations"]["runbook_url"] == f"https://docs.example.com/tenantdb/on-call#{anchor}"
        heading = rf"^#+ {alert['alert']}$"
        assert re.search(heading, on_call, re.M), f"no runbook for {alert['alert']} in the README"


def test_every_expression_reads_only_metrics_the_operator_exports(
    rendered_sets: Callable[[str], Rendered],
) -> None:
    for alert in rules(rendered_sets("monitoring")):
        unknown = metric_names(alert["expr"]) - exported_names()
        assert not unknown, (
            f"{alert['alert']} reads {unknown}, which operator/tenantdb/metrics.py does not export"
        )


def test_thresholds_follow_the_values(render: Callable[..., Rendered]) -> None:
    rendered = render(
        {
            "config": {"consumptionSyncIntervalSeconds": 600},
            "metrics": {
                "prometheusRule": {"enabled": True, "orphanedProjects": 5, "neonThrottledRatio": 0.2}
            },
        }
    )
    by_name = {a["alert"]: a for a in rules(rendered)}
    assert by_name["TenantdbConsumptionSyncStale"]["expr"].endswith("> 1800")
    assert by_name["TenantdbOrphanedProjects"]["expr"].endswith("> 5")
    assert "> 0.2" in by_name["TenantdbNeonThrottled"]["expr"]
    assert "runbook_url" not in by_name["TenantdbOrphanedProjects"]["annotations"]


def test_the_metric_name_finder_finds_names_and_nothing_else() -> None:
    expr = (
        'sum by (route, status) (rate(tenantdb_neon_api_calls_total{status=~"5..|x"}[10m])) / on() '
        "max(tenantdb_fleet_pass_interval_seconds) > 1e3 and histogram_quantile(0.9, sum by (le) "
        "(rate(tenantdb_time_to_ready_seconds_bucket[5m]))) or absent(up) unless time() - 2"
    )
    assert metric_names(expr) == {
        "tenantdb_neon_api_calls_total",
        "tenantdb_fleet_pass_interval_seconds",
        "tenantdb_time_to_ready_seconds_bucket",
        "up",
    }
    assert {"tenantdb_reconciles_total", "tenantdb_budget_spend_ratio_bucket"} <= exported_names()
    assert "up" not in exported_names()


@pytest.fixture(scope="module")
def promtool() -> str:
    """promtool of the pinned Prometheus release, as ``make promtool`` built it (``PROMTOOL``
    names another). Building takes minutes, so a test never does: ``make test`` and CI do it
    first. Under CI a missing promtool fails instead of skipping."""
    found = subprocess.run([str(BUILD), "--check"], capture_output=True, text=True, check=False)
    if found.returncode == 0:
        return found.stdout.strip()
    reason = (
        "promtool is not built: `make promtool` builds it with Go from the module proxy "
        f"(tools/promtool), or set PROMTOOL ({found.stderr.strip()})"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def _with_rule_annotations(tests: dict[str, Any], alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """Each expected alert's annotations: the rule's own, where the test writes none (the
    templated summaries are written out in the test file)."""
    annotations = {a["alert"]: a["annotations"] for a in alerts}
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            for expected in check.get("exp_alerts", []):
                expected["exp_annotations"] = {
                    **annotations[check["alertname"]],
                    **expected.get("exp_annotations", {}),
                }
    return tests


def test_the_alerts_pass_promtool_test_rules(
    promtool: str, rendered_sets: Callable[[str], Rendered], tmp_path: Path
) -> None:
    rendered = rendered_sets("monitoring")
    groups = rendered.one("PrometheusRule")["spec"]["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    tests = _with_rule_annotations(yaml.safe_load(ALERT_TESTS.read_text()), rules(rendered))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    every_alert = {a["alert"] for a in rules(rendered)}
    tested = {
        check["alertname"]
        for case in tests["tests"]
        for check in case["alert_rule_test"]
        if check.get("exp_alerts")
    }
    assert tested == every_alert, f"alerts never seen firing in the tests: {every_alert - tested}"

    checked = subprocess.run(
        [promtool, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ran = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "SUCCESS" in ran.stdout + ran.stderr


def test_promtool_is_pinned_to_one_release() -> None:
    go_mod = (ROOT / "tools" / "promtool" / "go.mod").read_text()
    assert re.search(r"^require github.com/prometheus/prometheus v0\.\d+\.\d+$", go_mod, re.M)
    assert shutil.which("bash") is not None

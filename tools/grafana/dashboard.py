"""The chart's Grafana dashboard, built with Grafana's foundation SDK (typed builders, not JSON).

``python tools/grafana/dashboard.py`` (``make dashboard``) writes
``charts/tenantdb/dashboards/tenantdb.json``, which the chart ships in a ConfigMap for Grafana's
sidecar (``metrics.dashboard.enabled``). tests/deploy/test_dashboard.py checks the file is
what this builds, and that every query names only metrics the operator exports.

Every query runs on the ``datasource`` variable (any Prometheus) and aggregates over the
replicas: only the active one acts, so counters are summed and gauges of shared state (the
orphan table, the fleet) are taken at their max.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import VizLegendOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueGraphMode, LegendDisplayMode, LegendPlacement
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DataSourceRef

__all__ = ["DASHBOARD", "OUTPUT", "build_dashboard", "rendered"]

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "charts" / "tenantdb" / "dashboards" / "tenantdb.json"
DASHBOARD = "tenantdb"  # the dashboard's uid: links to it survive a re-import
_SOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


def _query(expr: str, legend: str = "", *, ref: str = "A") -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).datasource(_SOURCE).ref_id(ref)
    return query.legend_format(legend) if legend else query


def _quantile(q: float, histogram: str, window: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket[{window}])))"


def _users_above(ratio: str) -> str:
    """Users whose spend / limit is above ``ratio`` (a bucket bound of tenantdb_budget_spend_ratio)."""
    every = 'max(tenantdb_budget_spend_ratio_bucket{le="+Inf"})'
    return f'{every} - max(tenantdb_budget_spend_ratio_bucket{{le="{ratio}"}})'


def _number(title: str, expr: str, description: str, *, unit: str = "short") -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(_SOURCE)
        .with_target(_query(expr))
        .unit(unit)
        .graph_mode(BigValueGraphMode.AREA)
        .height(4)
        .span(4)
    )


def _graph(
    title: str, description: str, *queries: tuple[str, str], unit: str = "short", span: int = 12
) -> timeseries.Panel:
    legend = VizLegendOptions().display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM)
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(_SOURCE)
        .unit(unit)
        .min(0)
        .legend(legend)
        .height(8)
        .span(span)
    )
    for index, (expr, label) in enumerate(queries):
        panel = panel.with_target(_query(expr, label, ref=chr(ord("A") + index)))
    return panel


def build_dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a plain dict)."""
    builder = (
        dashboard.Dashboard("tenantdb")
        .uid(DASHBOARD)
        .description("The tenantdb operator: fleet, signups, Neon calls, budgets, left-behind projects.")
        .tags(["tenantdb", "neon", "kubernetes-operator"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("1m")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        # -- at a glance --------------------------------------------------------------------------
        .with_row(dashboard.Row("At a glance"))
        .with_panel(
            _number(
                "Databases",
                "max(tenantdb_fleet_resources)",
                "Settled database resources (Ready or Suspended at their generation), as the fleet "
                "observation checks them.",
            )
        )
        .with_panel(
            _number(
                "Active replicas",
                "sum(tenantdb_replica_active)",
                "Replicas acting now: 1 is right; 0 means nothing is provisioned or enforced.",
            )
        )
        .with_panel(
            _number(
                "Suspended users",
                "max(tenantdb_budgets_over_limit)",
                "Users whose databases are suspended for their budget (the decision in force).",
            )
        )
        .with_panel(
            _number(
                "Spend this period",
                "max(tenantdb_spend_cents) / 100",
                "Every user's spend this billing period, as the latest enforcement round measured it.",
                unit="currencyUSD",
            )
        )
        .with_panel(
            _number(
                "Orphaned projects",
                "max(tenantdb_orphaned_projects)",
                "Neon projects left behind by accident: `tenantdb orphans --disposition orphaned`.",
            )
        )
        .with_panel(
            _number(
                "Since the last consumption sync",
                "time() - max(tenantdb_consumption_last_sync_timestamp_seconds)",
                "How old the costs budgets are enforced on are.",
                unit="s",
            )
        )
        # -- signups ----------------------------------------------------------------------------
        .with_row(dashboard.Row("Signups"))
        .with_panel(
            _graph(
                "Databases Ready per minute",
                "New database resources reaching Ready, by kind.",
                ("sum by (kind) (rate(tenantdb_time_to_ready_seconds_count[5m])) * 60", "{{kind}}"),
            )
        )
        .with_panel(
            _graph(
                "Time to Ready",
                "From a resource's creation to Ready: the median and the 95th percentile.",
                (_quantile(0.5, "tenantdb_time_to_ready_seconds", "10m"), "p50"),
                (_quantile(0.95, "tenantdb_time_to_ready_seconds", "10m"), "p95"),
                unit="s",
            )
        )
        .with_panel(
            _graph(
                "Reconciles",
                "Reconciles per second by kind and result.",
                ("sum by (kind, result) (rate(tenantdb_reconciles_total[5m]))", "{{kind}} {{result}}"),
                unit="ops",
                span=24,
            )
        )
        # -- Neon -------------------------------------------------------------------------------
        .with_row(dashboard.Row("Neon"))
        .with_panel(
            _graph(
                "Neon calls by route and outcome",
                "Calls per second by route and HTTP status (or the transport error when no answer came).",
                ("sum by (route, status) (rate(tenantdb_neon_api_calls_total[5m]))", "{{route}} {{status}}"),
                unit="reqps",
            )
        )
        .with_panel(
            _graph(
                "Neon retries by cause",
                "Retries per second: rate_limited (429), locked (423), unavailable, no answer at all.",
                ("sum by (cause) (rate(tenantdb_neon_api_retries_total[5m]))", "{{cause}}"),
                unit="reqps",
            )
        )
        .with_panel(
            _graph(
                "Rate limiter wait",
                "How long a call waited for a token of the account's rate limit (95th percentile).",
                (_quantile(0.95, "tenantdb_neon_rate_limiter_wait_seconds", "5m"), "p95"),
                unit="s",
                span=24,
            )
        )
        # -- budgets ----------------------------------------------------------------------------
        .with_row(dashboard.Row("Budgets"))
        .with_panel(
            _graph(
                "Users against their limits",
                "Users with a limit; of them, those past 90% of it, and those over it.",
                ('max(tenantdb_budget_spend_ratio_bucket{le="+Inf"})', "with a limit"),
                (_users_above("0.9"), "over 90% of it"),
                (_users_above("1.0"), "over the limit"),
            )
        )
        .with_panel(
            _graph(
                "Suspended users and spend",
                "Users suspended for their budget, and every user's spend this period.",
                ("max(tenantdb_budgets_over_limit)", "suspended users"),
                ("max(tenantdb_spend_cents) / 100", "spend (USD)"),
            )
        )
        .with_panel(
            _graph(
                "Consumption syncs",
                "Syncs per hour by result: complete, partial (some projects not measured), error.",
                ("sum by (result) (increase(tenantdb_consumption_syncs_total[1h]))", "{{result}}"),
            )
        )
        .with_panel(
            _graph(
                "Hard stop: compute quota writes",
                "Quotas set in Neon per hour (the stop between syncs), and those Neon did not take.",
                ("sum(increase(tenantdb_compute_quota_writes_total[1h]))", "written"),
                ("sum(increase(tenantdb_compute_quota_write_failures_total[1h]))", "failed"),
            )
        )
        # -- the fleet observation and what is left behind ------------------------------------------
        .with_row(dashboard.Row("Fleet observation"))
        .with_panel(
            _graph(
                "Pass length against the interval",
                "A pass (project list, endpoint checks, local checks) should end within its interval.",
                (
                    "sum(rate(tenantdb_fleet_pass_duration_seconds_sum[30m])) / "
                    "sum(rate(tenantdb_fleet_pass_duration_seconds_count[30m]))",
                    "pass length (mean)",
                ),
                ("max(tenantdb_fleet_pass_interval_seconds)", "interval"),
                unit="s",
            )
        )
        .with_panel(
            _graph(
                "Fleet checks",
                "Checks per second by check and result (drift found and healed shows as its own result).",
                ("sum by (check, result) (rate(tenantdb_fleet_checks_total[5m]))", "{{check}} {{result}}"),
                unit="ops",
            )
        )
        .with_panel(
            _graph(
                "Projects left behind",
                "Orphaned (by accident) and retained (deletionPolicy: Retain) projects on record.",
                ("max(tenantdb_orphaned_projects)", "orphaned"),
                ("max(tenantdb_retained_projects)", "retained"),
            )
        )
        .with_panel(
            _graph(
                "Sweep and decision log",
                "Projects with no live owner the sweep found, by action; decisions pruned past retention.",
                ("sum by (action) (increase(tenantdb_swept_projects_total[1h]))", "swept: {{action}}"),
                ("sum(increase(tenantdb_decision_log_pruned_total[1h]))", "decisions pruned"),
            )
        )
    )
    encoded: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return encoded


def rendered() -> str:
    """The file's content: stable key order, so a rebuild changes nothing unless the dashboard did."""
    return json.dumps(build_dashboard(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(rendered(), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

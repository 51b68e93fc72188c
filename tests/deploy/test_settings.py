"""The chart and the manifests speak the operator's configuration: every setting reachable,
defaults equal to the operator's, and the rendered environment parses into Settings."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from tenantdb.config import Settings
from tests.deploy.support import (
    CHART,
    Rendered,
    env_of,
    operator_container,
    operator_deployments,
    values_sets,
)

# Chosen on purpose to differ from the operator's default: clusters want structured logs.
DELIBERATELY_DIFFERENT = {"log_format"}


def env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        assert isinstance(first, str)
        return first
    return f"TENANTDB_{field.upper()}"


def snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def test_every_setting_is_set_by_the_chart(rendered_sets: Callable[[str], Rendered]) -> None:
    env = env_of(operator_container(rendered_sets("default").one("Deployment")))
    missing = {env_name(field) for field in Settings.model_fields} - set(env)
    assert not missing, f"settings the chart cannot set: {missing}"


def test_every_setting_is_set_by_the_kustomize_base(overlay: Callable[[str], Rendered]) -> None:
    env = env_of(operator_container(overlay("base").one("Deployment", "tenantdb")))
    missing = {env_name(field) for field in Settings.model_fields} - set(env)
    assert not missing, f"settings the base does not set: {missing}"


def _comparable(value: Any) -> Any:
    if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        return Decimal(str(value))
    if isinstance(value, str) and re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        return Decimal(value)
    return str(value) if hasattr(value, "value") else value


def test_chart_defaults_are_the_operators_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    config = values["config"]
    for key, chart_default in config.items():
        field = snake(key)
        assert field in Settings.model_fields, f"config.{key} is no operator setting"
        if field in DELIBERATELY_DIFFERENT:
            continue
        operator_default = Settings.model_fields[field].get_default(call_default_factory=True)
        assert _comparable(chart_default) == _comparable(operator_default), key
    assert values["health"]["port"] == Settings.model_fields["health_port"].default
    assert values["metrics"]["port"] == Settings.model_fields["metrics_port"].default


FAKE_SECRETS = {
    "ENCRYPTION_KEY": "0123456789abcdef" * 4,
    "NEON_API_KEY": "fake-key",
    "TENANTDB_METADATA_DATABASE_URL": "postgresql://fake@localhost/db",
    "NEON_ORG_ID": "org-fake",
    "TENANTDB_PREVIOUS_ENCRYPTION_KEYS": "fedcba9876543210" * 4,
}


def settings_from(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as the operator would read them from this container's environment."""
    import os

    for name in list(os.environ):
        if name.startswith("TENANTDB_") or name in FAKE_SECRETS:
            monkeypatch.delenv(name)
    for name, item in env_of(container).items():
        if "value" in item:
            monkeypatch.setenv(name, item["value"])
        elif "secretKeyRef" in item.get("valueFrom", {}):
            monkeypatch.setenv(name, FAKE_SECRETS[name])
    return Settings()


@pytest.mark.parametrize("name", sorted(values_sets()))
def test_rendered_environment_parses_into_settings(
    rendered_sets: Callable[[str], Rendered], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    values = values_sets()[name]
    shards = values.get("shards", 1)
    watched: set[str] = set()
    for deployment in operator_deployments(rendered_sets(name)):
        settings = settings_from(operator_container(deployment), monkeypatch)
        watched.update(settings.namespaces)
        config = {
            **yaml.safe_load((CHART / "values.yaml").read_text())["config"],
            **values_sets()[name].get("config", {}),
        }
        assert settings.tier_free_limit_cents == config["tierFreeLimitCents"]
        assert settings.tier_enterprise_limit_cents == config["tierEnterpriseLimitCents"]
        assert settings.price_compute_cu_hour_usd == Decimal(config["priceComputeCuHourUsd"])
        assert settings.consumption_sync_interval_seconds == config["consumptionSyncIntervalSeconds"]
        assert settings.log_format.value == config["logFormat"]
        if shards == 1:
            assert settings.namespaces == values.get("watchNamespaces", [])
        assert bool(settings.peering_name) == values.get("peering", {}).get("enabled", False)
        assert settings.neon_rate_limit_share * shards == pytest.approx(1.0)
    # Shards together watch every namespace (each its own share, tested with the chart).
    assert watched == set(values.get("watchNamespaces", []))


def test_kustomize_environment_parses_into_settings(
    overlay: Callable[[str], Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("base", "production", "emulator"):
        settings = settings_from(operator_container(overlay(name).one("Deployment", "tenantdb")), monkeypatch)
        assert settings.namespaces == []
        assert settings.peering_name == ""
        assert settings.tier_enterprise_limit_cents is None

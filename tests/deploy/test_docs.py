"""docs/deploy.md documents every chart value, and only values that exist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.deploy.support import CHART, ROOT

# Free-form maps: documented as a whole, not key by key.
WHOLE = {
    "podSecurityContext",
    "securityContext",
    "resources",
    "podAnnotations",
    "podLabels",
    "nodeSelector",
    "affinity",
    "emulator.resources",
    "emulator.postgres.resources",
    "metrics.service.annotations",
    "metrics.serviceMonitor.labels",
    "metrics.dashboard.labels",
    "serviceAccount.annotations",
    "tiers",  # tier name -> DatabaseTier spec (the README's DatabaseTier section documents a spec)
}


def leaf_paths(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in WHOLE:
            yield from leaf_paths(value, f"{path}.")
        else:
            yield path


def test_values_table_matches_values_yaml() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    doc = doc.split("## Values reference", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"(?m)^\| `([A-Za-z][\w.]*)` \|", doc))
    values = set(leaf_paths(yaml.safe_load((CHART / "values.yaml").read_text())))
    assert values - documented == set(), "undocumented values"
    assert documented - values == set(), "documented values that do not exist"

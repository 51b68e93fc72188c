"""The CRDs: the chart and the Kustomize base carry exact copies of the generated crds/."""

from __future__ import annotations

from pathlib import Path

import yaml
from kopf._cogs.structs import references

from tests.deploy.support import CHART, CRDS, MANIFESTS

GENERATED = sorted(path.name for path in CRDS.glob("*.yaml"))
KOPF_PEERING = "kopf-peering.yaml"


def test_the_generated_crds_exist() -> None:
    assert GENERATED == [
        "databasebudgets.tenantdb.io.yaml",
        "databasetiers.tenantdb.io.yaml",
        "globaldatabases.tenantdb.io.yaml",
        "neonorganizations.tenantdb.io.yaml",
        "workspacedatabases.tenantdb.io.yaml",
    ]


def _assert_identical_copies(folder: Path, extra: set[str]) -> None:
    copies = {path.name for path in folder.glob("*.yaml")}
    missing = set(GENERATED) - copies
    assert not missing, f"{folder} lacks {missing}: run `make crds`"
    assert copies - set(GENERATED) == extra, f"{folder} has unexpected files"
    for name in GENERATED:
        assert (folder / name).read_bytes() == (CRDS / name).read_bytes(), (
            f"{folder / name} differs from crds/{name}: run `make crds`"
        )


def test_chart_crds_are_identical_to_the_generated_ones() -> None:
    _assert_identical_copies(CHART / "crds", extra={KOPF_PEERING})


def test_kustomize_base_crds_are_identical_to_the_generated_ones() -> None:
    _assert_identical_copies(MANIFESTS / "base" / "crds", extra=set())
    listed = yaml.safe_load((MANIFESTS / "base" / "kustomization.yaml").read_text())["resources"]
    assert sorted(p.removeprefix("crds/") for p in listed if p.startswith("crds/")) == GENERATED


def test_kopf_peering_crds_match_what_kopf_looks_for() -> None:
    crds = [doc for doc in yaml.safe_load_all((CHART / "crds" / KOPF_PEERING).read_text()) if doc]
    served = {(c["spec"]["group"], c["spec"]["names"]["plural"], c["spec"]["scope"]) for c in crds}
    expected = {
        (references.CLUSTER_PEERINGS_K.group, references.CLUSTER_PEERINGS_K.any_name, "Cluster"),
        (references.NAMESPACED_PEERINGS_K.group, references.NAMESPACED_PEERINGS_K.any_name, "Namespaced"),
    }
    assert served == expected
    for crd in crds:
        (version,) = crd["spec"]["versions"]
        assert version["name"] == references.CLUSTER_PEERINGS_K.version
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True  # kopf writes free-form keep-alives

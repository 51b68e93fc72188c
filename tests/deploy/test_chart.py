"""The Helm chart: it renders for every values set, every object is valid, lint is clean,
the values schema catches typos, and each option does what it says."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.deploy.support import (
    CHART,
    NAMESPACE,
    Rendered,
    env_of,
    operator_container,
    operator_deployments,
    validate_all,
    validate_object,
    values_sets,
)

FAKE_KEY = "0123456789abcdef" * 4


# --- every values set -----------------------------------------------------------------------


def test_every_rendered_object_is_valid_for_its_kind(rendered: Rendered) -> None:
    assert rendered.objects
    validate_all(rendered.objects)


def test_the_validator_rejects_an_unknown_field(rendered_sets: Callable[[str], Rendered]) -> None:
    deployment = copy.deepcopy(rendered_sets("default").one("Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(Exception, match="imagePullPolcy"):
        validate_object(deployment)


def test_no_two_objects_share_kind_namespace_and_name(rendered: Rendered) -> None:
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in rendered.objects]
    assert len(keys) == len(set(keys))


def test_namespaced_objects_live_in_the_release_or_a_watched_namespace(rendered: Rendered) -> None:
    cluster_scoped = {
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "ClusterKopfPeering",
        "DatabaseTier",
    }
    # The watched namespaces of the ci/ values sets (namespaced, sharded).
    watched = {ns for values in values_sets().values() for ns in values.get("watchNamespaces", [])}
    allowed = {NAMESPACE} | watched
    for obj in rendered.objects:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert namespace is None, obj["metadata"]
        else:
            assert namespace in allowed, (obj["kind"], obj["metadata"]["name"])


@pytest.mark.parametrize("name", sorted(values_sets()))
def test_helm_lint_is_clean(name: str) -> None:
    report = helm.lint(str(CHART), values_sets()[name], strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems, report
    assert not report["errors"], report


def test_chart_metadata() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "tenantdb"
    assert meta["type"] == "application"


# --- values.schema.json ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"imagee": {"tag": "x"}}, "imagee"),
        ({"config": {"logformat": "json"}}, "logformat"),
        ({"config": {"logFormat": "xml"}}, "logFormat"),
        ({"peering": {"enabeld": True}}, "enabeld"),
        ({"networkPolicy": {"enabled": "yes"}}, "enabled"),
        ({"createSecret": {"enabled": True, "encryptionKey": "not-hex"}}, "encryptionKey"),
        ({"config": {"defaultTier": "Gold Plan"}}, "defaultTier"),
        ({"tiers": {"Gold Plan": {}}}, "Gold Plan"),
        ({"config": {"tierFreeLimitCents": -1}}, "tierFreeLimitCents"),
        ({"image": {"digest": "latest"}}, "digest"),
    ],
)
def test_values_schema_rejects_mistakes(chart: helm.Chart, values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=complaint):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmValuesError, match=complaint):
        chart.render(values, name="tenantdb", namespace=NAMESPACE)


@pytest.mark.parametrize("name", sorted(values_sets()))
def test_every_values_set_passes_the_schema(chart: helm.Chart, name: str) -> None:
    chart.validate_schema(values_sets()[name])


# --- the operator Deployment ---------------------------------------------------------------------


def test_default_is_one_replica_recreated_never_rolled(rendered_sets: Callable[[str], Rendered]) -> None:
    (deployment,) = operator_deployments(rendered_sets("default"))
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = operator_container(deployment)
    assert (
        container["image"] == f"tenantdb:{yaml.safe_load((CHART / 'Chart.yaml').read_text())['appVersion']}"
    )
    assert container["args"] == ["run"]
    env = env_of(container)
    assert env["TENANTDB_PEERING_NAME"]["value"] == ""
    assert env["TENANTDB_NAMESPACES"]["value"] == ""


def test_probes_hit_the_health_port(rendered: Rendered) -> None:
    for deployment in operator_deployments(rendered):
        container = operator_container(deployment)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["health"] == int(env_of(container)["TENANTDB_HEALTH_PORT"]["value"])
        assert ports["metrics"] == int(env_of(container)["TENANTDB_METRICS_PORT"]["value"])
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_settings_follow_values(render: Callable[..., Rendered]) -> None:
    rendered = render(
        {
            "watchNamespaces": ["team-a", "team-b"],
            "config": {
                "tierPaidLimitCents": 123456789,
                "priceComputeCuHourUsd": "0.2",
                "tierEnterpriseLimitCents": None,
                "logFormat": "text",
            },
            "health": {"port": 8181},
        }
    )
    env = env_of(operator_container(rendered.one("Deployment")))
    assert env["TENANTDB_NAMESPACES"]["value"] == "team-a,team-b"
    assert env["TENANTDB_TIER_PAID_LIMIT_CENTS"]["value"] == "123456789"  # no 1.23456789e+08
    assert env["TENANTDB_PRICE_COMPUTE_CU_HOUR_USD"]["value"] == "0.2"
    assert env["TENANTDB_TIER_ENTERPRISE_LIMIT_CENTS"]["value"] == ""
    assert env["TENANTDB_LOG_FORMAT"]["value"] == "text"
    assert env["TENANTDB_HEALTH_PORT"]["value"] == "8181"


def test_image_by_digest_and_scheduling_knobs(rendered_sets: Callable[[str], Rendered]) -> None:
    values = values_sets()["customized"]
    (deployment,) = operator_deployments(rendered_sets("customized"))
    pod = deployment["spec"]["template"]
    assert deployment["metadata"]["name"] == "tdb"
    assert (
        operator_container(deployment)["image"]
        == f"{values['image']['repository']}@{values['image']['digest']}"
    )
    assert operator_container(deployment)["imagePullPolicy"] == "Always"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["spec"]["nodeSelector"] == values["nodeSelector"]
    assert pod["spec"]["tolerations"] == values["tolerations"]
    assert pod["spec"]["affinity"] == values["affinity"]
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["spec"]["serviceAccountName"] == "tenantdb-operator"
    assert pod["metadata"]["annotations"]["example.com/team"] == "platform"
    assert pod["metadata"]["labels"]["example.com/tier"] == "control-plane"
    assert operator_container(deployment)["resources"] == values["resources"]
    env = env_of(operator_container(deployment))
    assert env["TENANTDB_EXTRA_SETTING"] == {"name": "TENANTDB_EXTRA_SETTING", "value": "1"}
    assert env["NEON_ORG_ID"] == {"name": "NEON_ORG_ID", "value": "org-plain-value"}
    assert env["TENANTDB_TIER_FREE_LIMIT_CENTS"]["value"] == ""
    assert env["TENANTDB_TIER_ENTERPRISE_LIMIT_CENTS"]["value"] == "100000000"


# --- secrets ---------------------------------------------------------------------------------------

SECRET_ENV = {"ENCRYPTION_KEY", "NEON_API_KEY", "TENANTDB_METADATA_DATABASE_URL"}


def test_secrets_are_passed_by_reference_only(rendered: Rendered) -> None:
    for deployment in operator_deployments(rendered):
        env = env_of(operator_container(deployment))
        for name in SECRET_ENV:
            assert "value" not in env[name], f"{name} is inlined"
            assert env[name]["valueFrom"]["secretKeyRef"]["name"]


def test_default_creates_no_secret_and_references_the_existing_one(
    rendered_sets: Callable[[str], Rendered],
) -> None:
    rendered = rendered_sets("default")
    assert not rendered.kinds("Secret")
    env = env_of(operator_container(rendered.one("Deployment")))
    assert {env[name]["valueFrom"]["secretKeyRef"]["name"] for name in SECRET_ENV} == {"tenantdb"}
    assert env["NEON_ORG_ID"]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_secret_name_and_keys_are_configurable(rendered_sets: Callable[[str], Rendered]) -> None:
    env = env_of(operator_container(rendered_sets("customized").one("Deployment")))
    refs = {name: env[name]["valueFrom"]["secretKeyRef"] for name in SECRET_ENV}
    assert refs == {
        "ENCRYPTION_KEY": {"name": "platform-tenantdb", "key": "sim-encryption-key"},
        "NEON_API_KEY": {"name": "platform-tenantdb", "key": "neon-key"},
        "TENANTDB_METADATA_DATABASE_URL": {"name": "platform-tenantdb", "key": "sim-db-url"},
    }


def test_create_secret_is_an_explicit_opt_in(rendered_sets: Callable[[str], Rendered]) -> None:
    rendered = rendered_sets("createsecret")
    secret = rendered.one("Secret")
    assert secret["metadata"]["name"] == "tenantdb-trial"
    assert set(secret["stringData"]) == {
        "ENCRYPTION_KEY",
        "NEON_API_KEY",
        "TENANTDB_METADATA_DATABASE_URL",
        "NEON_ORG_ID",
    }
    env = env_of(operator_container(rendered.one("Deployment")))
    for name in SECRET_ENV:
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "tenantdb-trial"
        assert ref["key"] in secret["stringData"]


def test_pods_roll_when_the_chart_made_secret_changes(render: Callable[..., Rendered]) -> None:
    def checksum(key: str) -> str:
        values = {
            "createSecret": {
                "enabled": True,
                "encryptionKey": key,
                "neonApiKey": "k",
                "metadataDatabaseUrl": "postgresql://h/db",
            }
        }
        deployment = render(values).one("Deployment")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/secret"])

    assert checksum(FAKE_KEY) != checksum("f" * 64)


def test_create_secret_needs_the_encryption_key(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match="encryptionKey is required"):
        chart.render(
            {
                "createSecret": {
                    "enabled": True,
                    "neonApiKey": "k",
                    "metadataDatabaseUrl": "postgresql://h/db",
                }
            },
            name="tenantdb",
            namespace=NAMESPACE,
        )


# --- peering ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "peers"), [("peering", 2), ("namespaced", 3)])
def test_peering_runs_peers_with_distinct_priorities(
    rendered_sets: Callable[[str], Rendered], name: str, peers: int
) -> None:
    rendered = rendered_sets(name)
    deployments = operator_deployments(rendered)
    assert len(deployments) == peers
    priorities = []
    for deployment in deployments:
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        env = env_of(operator_container(deployment))
        assert env["TENANTDB_PEERING_NAME"]["value"] == "tenantdb"
        assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        priorities.append(int(env["TENANTDB_PEERING_PRIORITY"]["value"]))
        anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert anti["preferredDuringSchedulingIgnoredDuringExecution"]
    # Equal priorities freeze every peer (kopf pauses on same-priority peers).
    assert len(set(priorities)) == peers
    assert priorities == sorted(priorities, reverse=True)
    assert deployments[0]["metadata"]["name"] == "tenantdb"
    # Selectors never overlap, so the Deployments do not fight over pods.
    selectors = [tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in deployments]
    assert len(set(selectors)) == peers
    pdb = rendered.one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1


def test_peering_objects_exist_where_kopf_looks(rendered_sets: Callable[[str], Rendered]) -> None:
    cluster = rendered_sets("peering")
    assert [o["metadata"]["name"] for o in cluster.kinds("ClusterKopfPeering")] == ["tenantdb"]
    assert not cluster.kinds("KopfPeering")
    namespaced = rendered_sets("namespaced")
    assert not namespaced.kinds("ClusterKopfPeering")
    assert sorted(o["metadata"]["namespace"] for o in namespaced.kinds("KopfPeering")) == ["team-a", "team-b"]


def test_the_primary_keeps_its_selector_when_peering_is_turned_on(
    rendered_sets: Callable[[str], Rendered],
) -> None:
    # A Deployment's selector is immutable: turning peering on must not change the primary's.
    alone = rendered_sets("default").one("Deployment")
    peered = rendered_sets("peering").one("Deployment", "tenantdb")
    assert alone["spec"]["selector"] == peered["spec"]["selector"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"peering": {"enabled": True}, "watchNamespaces": ["tenant-*"]}, "glob patterns"),
        ({"peering": {"enabled": True, "replicas": 1}}, "at least 2"),
    ],
)
def test_peering_refuses_setups_that_cannot_work(
    chart: helm.Chart, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=complaint):
        chart.render(values, name="tenantdb", namespace=NAMESPACE)


def test_no_peering_objects_without_peering(rendered_sets: Callable[[str], Rendered]) -> None:
    rendered = rendered_sets("default")
    assert not rendered.kinds("KopfPeering", "ClusterKopfPeering", "PodDisruptionBudget")


# --- shards ----------------------------------------------------------------------------------------


def test_shards_split_the_watched_namespaces_each_with_its_own_peering(
    rendered_sets: Callable[[str], Rendered],
) -> None:
    rendered = rendered_sets("sharded")
    watched: dict[str, set[str]] = {}
    peering: dict[str, str] = {}
    for deployment in operator_deployments(rendered):
        shard = deployment["spec"]["selector"]["matchLabels"]["tenantdb.io/shard"]
        env = env_of(operator_container(deployment))
        namespaces = set(env["TENANTDB_NAMESPACES"]["value"].split(","))
        # A shard's standby watches exactly what its active peer watches, under the same peering.
        assert watched.setdefault(shard, namespaces) == namespaces
        assert (
            peering.setdefault(shard, env["TENANTDB_PEERING_NAME"]["value"])
            == env["TENANTDB_PEERING_NAME"]["value"]
        )
        # Two shards share one organisation's limits: half each.
        assert float(env["TENANTDB_NEON_RATE_LIMIT_SHARE"]["value"]) == 0.5
        # Every shard's Sim sync spreads tenants over all the shards' namespaces alike.
        assert env["TENANTDB_SIM_NAMESPACES"]["value"] == "tenants-a,tenants-b,tenants-c"
    # The i-th namespace goes to shard i mod 2: appending one moves nobody.
    assert watched == {"0": {"tenants-a", "tenants-c"}, "1": {"tenants-b"}}
    assert peering == {"0": "tenantdb-shard-0", "1": "tenantdb-shard-1"}
    kopf_peerings = {o["metadata"]["namespace"]: o["metadata"]["name"] for o in rendered.kinds("KopfPeering")}
    assert kopf_peerings == {
        "tenants-a": "tenantdb-shard-0",
        "tenants-b": "tenantdb-shard-1",
        "tenants-c": "tenantdb-shard-0",
    }
    # No two Deployments fight over pods, and each shard keeps one peer through a drain.
    selectors = [
        tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in operator_deployments(rendered)
    ]
    assert len(set(selectors)) == len(selectors) == 4
    budgets = {
        p["metadata"]["name"]: p["spec"]["selector"]["matchLabels"]["tenantdb.io/shard"]
        for p in rendered.kinds("PodDisruptionBudget")
    }
    assert budgets == {"tenantdb-shard-0": "0", "tenantdb-shard-1": "1"}


def test_one_shard_renders_exactly_the_unsharded_operator(
    render: Callable[..., Rendered], rendered_sets: Callable[[str], Rendered]
) -> None:
    for name in ("default", "namespaced"):
        values = {**values_sets()[name], "shards": 1}
        assert render(values).objects == rendered_sets(name).objects


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"shards": 2}, "exact names"),
        ({"shards": 2, "watchNamespaces": ["tenant-*", "other"]}, "exact names"),
        ({"shards": 3, "watchNamespaces": ["a", "b"]}, "one watched namespace per shard"),
    ],
)
def test_shards_refuse_setups_that_cannot_work(
    chart: helm.Chart, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=complaint):
        chart.render(values, name="tenantdb", namespace=NAMESPACE)


# --- metrics, network policy ---------------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_service(rendered_sets: Callable[[str], Rendered]) -> None:
    rendered = rendered_sets("monitoring")
    monitor = rendered.one("ServiceMonitor")
    service = rendered.one("Service", "tenantdb-metrics")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    (deployment,) = operator_deployments(rendered)
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert not rendered_sets("default").kinds("ServiceMonitor")


def _ports(rule: dict[str, Any]) -> set[Any]:
    return {port["port"] for port in rule.get("ports", [])}


def test_network_policy_allows_only_what_the_operator_needs(rendered_sets: Callable[[str], Rendered]) -> None:
    rendered = rendered_sets("networkpolicy")
    policy = rendered.one("NetworkPolicy")
    (deployment,) = operator_deployments(rendered)
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = policy["spec"]["ingress"]
    assert _ports(ingress) == {"health", "metrics"}
    assert ingress["from"] == values_sets()["networkpolicy"]["networkPolicy"]["ingressFrom"]
    egress = [_ports(rule) for rule in policy["spec"]["egress"]]
    assert egress == [{53}, {443, 6443}, {443}, {5432}]
    api_server = policy["spec"]["egress"][1]
    assert api_server["to"] == [{"ipBlock": {"cidr": "10.96.0.1/32"}}]
    assert not rendered_sets("default").kinds("NetworkPolicy")


# --- the emulator ----------------------------------------------------------------------------------


def test_emulator_mode_points_the_operator_at_the_in_cluster_emulator(
    rendered_sets: Callable[[str], Rendered],
) -> None:
    rendered = rendered_sets("emulator")
    (deployment,) = operator_deployments(rendered)
    env = env_of(operator_container(deployment))
    url = env["TENANTDB_NEON_API_URL"]["value"]
    service = rendered.one("Service", "tenantdb-neon-emulator")
    assert (
        url == f"http://tenantdb-neon-emulator.{NAMESPACE}.svc:{service['spec']['ports'][0]['port']}/api/v2"
    )

    emulator = rendered.one("Deployment", "tenantdb-neon-emulator")
    container = emulator["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith("-emulator")
    assert container["args"][:2] == ["emulator", "neon"]
    assert "--host=0.0.0.0" in container["args"]
    postgres_url = next(a for a in container["args"] if a.startswith("--postgres-url="))
    assert f"@tenantdb-emulator-postgres.{NAMESPACE}.svc:5432/" in postgres_url
    assert "$(POSTGRES_PASSWORD)" in postgres_url  # from a Secret, expanded by the kubelet

    secret = rendered.one("Secret", "tenantdb")
    # The operator is given the one API key the emulator accepts, and its organisation.
    emulator_secret = rendered.one("Secret", "tenantdb-emulator")
    assert "--api-key=$(NEON_API_KEY)" in container["args"]
    assert env_of(container)["NEON_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "tenantdb-emulator"
    assert secret["stringData"]["NEON_API_KEY"] == emulator_secret["stringData"]["NEON_API_KEY"]
    assert f"--org-id={secret['stringData']['NEON_ORG_ID']}" in container["args"]
    metadata_url = secret["stringData"]["TENANTDB_METADATA_DATABASE_URL"]
    assert f"@tenantdb-emulator-postgres.{NAMESPACE}.svc:5432/tenantdb_metadata" in metadata_url
    assert rendered.one("Deployment", "tenantdb-emulator-postgres")
    init = deployment["spec"]["template"]["spec"]["initContainers"]
    assert [c["args"] for c in init] == [["migrate"]]
    # The operator's NetworkPolicy lets it reach the emulator.
    policy = rendered.one("NetworkPolicy")
    assert any(8181 in _ports(rule) for rule in policy["spec"]["egress"])
    for obj in rendered.kinds("Deployment"):
        if obj is not deployment:
            assert obj["metadata"]["annotations"]["tenantdb.io/demo-only"] == "true"


def test_emulator_objects_only_in_emulator_mode(rendered: Rendered) -> None:
    components = {
        o["metadata"]["labels"].get("app.kubernetes.io/component")
        for o in rendered.kinds("Deployment", "Service")
    }
    emulated = {"neon-emulator", "emulator-postgres"} & components
    url = env_of(operator_container(operator_deployments(rendered)[0]))["TENANTDB_NEON_API_URL"]["value"]
    if emulated:
        assert emulated == {"neon-emulator", "emulator-postgres"}
        assert "neon-emulator" in url
    else:
        assert url == "https://console.neon.tech/api/v2"


# --- NOTES.txt ------------------------------------------------------------------------------------


def test_notes_say_what_to_do_next(rendered_sets: Callable[[str], Rendered]) -> None:
    notes = rendered_sets("default").notes
    assert "kubectl -n tenantdb-system create secret generic tenantdb" in notes
    for key in ("NEON_API_KEY", "ENCRYPTION_KEY", "TENANTDB_METADATA_DATABASE_URL"):
        assert f"--from-literal={key}=" in notes
    assert "manifests/samples/" in notes
    assert "kubectl get gdb,wdb,dbb" in notes
    assert "DEMO MODE" in rendered_sets("emulator").notes
    assert "create secret generic" not in rendered_sets("createsecret").notes


# --- the tiers ----------------------------------------------------------------------------------


def test_the_chart_ships_the_three_tiers_as_the_samples_write_them(
    rendered_sets: Callable[[str], Rendered], render: Callable[..., Rendered]
) -> None:
    from tenantdb.testing.manifests import load_manifests
    from tests.deploy.support import MANIFESTS

    shipped = {o["metadata"]["name"]: o["spec"] for o in rendered_sets("default").kinds("DatabaseTier")}
    samples = {
        o["metadata"]["name"]: o["spec"]
        for o in load_manifests(MANIFESTS / "samples")
        if o["kind"] == "DatabaseTier"
    }
    assert set(shipped) == {"free", "paid", "enterprise"}
    assert shipped == samples
    # The settings' limits are the tiers' before there were objects: the same numbers.
    assert (shipped["free"]["limitCents"], shipped["paid"]["limitCents"]) == (500, 5000)
    assert "limitCents" not in shipped["enterprise"]  # unlimited
    for tier in rendered_sets("default").kinds("DatabaseTier"):
        assert "namespace" not in tier["metadata"]  # cluster-scoped
    # A tier of one's own beside them, one of them left out (null), and none at all (null).
    custom = render(
        {"tiers": {"gold": {"limitCents": 20000, "autoscaling": {"minCu": 1, "maxCu": 8}}, "paid": None}}
    )
    assert sorted(t["metadata"]["name"] for t in custom.kinds("DatabaseTier")) == [
        "enterprise",
        "free",
        "gold",
    ]
    validate_all(custom.kinds("DatabaseTier"))
    assert not render({"tiers": None}).kinds("DatabaseTier")

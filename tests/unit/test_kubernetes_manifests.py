"""The Kubernetes manifests of collector-config/kubernetes/ parse, hang together, and carry the very
collector and Jaeger configurations the rest of the repository tests (no cluster here: the real
binaries validate the embedded configurations in tests/integration/test_kubernetes_configs.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CONFIG = Path(__file__).resolve().parents[2] / "collector-config"
MANIFESTS = CONFIG / "kubernetes"
# ConfigMap name -> (key, the file of collector-config/ it must be a verbatim copy of)
EMBEDDED = {
    "provtrace-collector-config": ("otelcol.yaml", CONFIG / "otelcol.yaml"),
    "provtrace-jaeger-config": ("jaeger.yaml", CONFIG / "jaeger-badger.yaml"),
}
API_VERSIONS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Service": "v1",
    "PersistentVolumeClaim": "v1",
    "Deployment": "apps/v1",
}

Doc = dict[str, Any]


def documents() -> list[tuple[Path, Doc]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        with path.open(encoding="utf-8") as stream:
            found += [(path, doc) for doc in yaml.safe_load_all(stream) if doc is not None]
    return found


def of_kind(kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == kind}


def containers(deployment: Doc) -> Iterator[Doc]:
    yield from deployment["spec"]["template"]["spec"]["containers"]


def test_every_manifest_is_a_known_kind_with_its_required_fields() -> None:
    docs = documents()
    assert {doc["kind"] for _, doc in docs} == set(API_VERSIONS)
    for path, doc in docs:
        where = f"{path.name}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        assert doc["apiVersion"] == API_VERSIONS[doc["kind"]], where
        assert doc["metadata"]["name"], where
        assert "namespace" not in doc["metadata"], f"{where}: the kustomization sets the namespace"
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "provtrace", where


def test_the_kustomization_lists_every_manifest_and_nothing_else() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["namespace"] == of_kind("Namespace").popitem()[0]
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {path.name for path in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("name", sorted(EMBEDDED))
def test_an_embedded_configuration_is_the_one_in_collector_config(name: str) -> None:
    key, source = EMBEDDED[name]
    data = of_kind("ConfigMap")[name]["data"]
    assert set(data) == {key}
    assert data[key] == source.read_text(encoding="utf-8"), (
        f"{name} differs from {source.relative_to(CONFIG.parent)}: copy the file into the ConfigMap"
    )


def test_each_deployment_runs_one_pinned_container_on_its_config_and_volume() -> None:
    deployments = of_kind("Deployment")
    assert set(deployments) == {"provtrace-collector", "provtrace-jaeger"}
    config_maps, claims = of_kind("ConfigMap"), of_kind("PersistentVolumeClaim")
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        template = spec["template"]
        assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items(), name
        # one writer per volume: a single replica, and the old pod gone before the new one starts
        assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate", name
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True, name
        volumes = {volume["name"]: volume for volume in template["spec"]["volumes"]}
        (container,) = containers(deployment)
        image, _, tag = container["image"].rpartition(":")
        assert image and tag and tag != "latest", f"{name}: pin the image"
        mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
        assert set(mounts) == set(volumes), name
        config_map = volumes["config"]["configMap"]["name"]
        (key,) = config_maps[config_map]["data"]
        assert container["args"] == [f"--config={mounts['config']}/{key}"], name
        assert volumes["data"]["persistentVolumeClaim"]["claimName"] in claims, name
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env["PROVTRACE_STACK_DIR"] == mounts["data"], f"{name}: state must land on the volume"
        port_names = {port["name"] for port in container["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["port"] in port_names, f"{name} {probe}"


def test_each_service_selects_a_deployment_and_targets_its_named_ports() -> None:
    deployments = of_kind("Deployment")
    for name, service in of_kind("Service").items():
        selected = [
            d
            for d in deployments.values()
            if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, f"service {name} selects {len(selected)} deployments"
        port_names = {port["name"] for c in containers(selected[0]) for port in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"service {name} port {port['name']}"


def test_the_collector_reaches_jaeger_through_its_service() -> None:
    (collector,) = containers(of_kind("Deployment")["provtrace-collector"])
    env = {item["name"]: item["value"] for item in collector["env"]}
    jaeger = of_kind("Service")[env["PROVTRACE_JAEGER_OTLP_HOST"]]
    assert int(env["PROVTRACE_JAEGER_OTLP_GRPC_PORT"]) in {port["port"] for port in jaeger["spec"]["ports"]}
    assert env["PROVTRACE_LISTEN_HOST"] == "0.0.0.0"  # reachable by the agents' pods

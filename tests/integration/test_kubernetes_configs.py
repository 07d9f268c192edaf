"""The configurations the Kubernetes manifests mount validate with the real collector and Jaeger,
under the environment their Deployments set (the data directory moved into the test's own)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from provtrace.testing.evidence import stack_required, unavailable
from tests.integration.stack import REPO, stack_module

MANIFESTS = REPO / "collector-config" / "kubernetes"
# Deployment -> the ConfigMap its container mounts, in the manifest file that holds both
CASES = {
    "provtrace-collector": ("collector.yaml", "collector-configmap.yaml", 0),
    "provtrace-jaeger": ("jaeger.yaml", "jaeger-configmap.yaml", 1),
}


def binaries() -> tuple[Path, Path]:
    reason = unavailable(REPO)
    if reason is not None:
        if stack_required():
            pytest.fail(f"the collector and Jaeger binaries are needed: {reason}", pytrace=False)
        pytest.skip(f"the collector and Jaeger binaries are not built: {reason}")
    return stack_module.resolve_binaries(build=False)


def first_of_kind(path: Path, kind: str) -> Any:
    with path.open(encoding="utf-8") as stream:
        return next(doc for doc in yaml.safe_load_all(stream) if doc and doc["kind"] == kind)


@pytest.mark.parametrize("deployment", sorted(CASES))
def test_the_mounted_configuration_validates_under_the_deployments_environment(
    deployment: str, tmp_path: Path
) -> None:
    manifest, config_map_file, binary = CASES[deployment]
    program = binaries()[binary]
    spec = first_of_kind(MANIFESTS / manifest, "Deployment")["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    (config_text,) = first_of_kind(MANIFESTS / config_map_file, "ConfigMap")["data"].values()
    config = tmp_path / "config.yaml"
    config.write_text(config_text, encoding="utf-8")
    env = {item["name"]: item["value"] for item in container["env"]}
    env["PROVTRACE_STACK_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [str(program), "validate", f"--config={config}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **env},
        check=False,
    )
    assert result.returncode == 0, f"{deployment}: {result.stdout}\n{result.stderr}"

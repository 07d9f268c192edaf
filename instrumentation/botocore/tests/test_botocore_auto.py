"""``opentelemetry-instrument`` and ``provtrace.instrument()`` both find the instrumentation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from moto_fixture import Moto

APP = """
import boto3, provtrace
sm = boto3.client("secretsmanager")
sm.create_secret(Name="auto/token", SecretString="auto-value-0123456789")
h = provtrace.configure(service_name="auto")
with provtrace.decision("auto", trigger="test", actor="agent"):
    sm.get_secret_value(SecretId="auto/token")
h.shutdown(30)
"""


def test_opentelemetry_instrument_turns_it_on(moto: Moto, tmp_path: Path) -> None:
    launcher = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert launcher is not None
    env = {
        **os.environ,
        "PROVTRACE_HOME": str(tmp_path),
        "PROVTRACE_ARCHIVE_DIR": str(tmp_path / "archive"),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    subprocess.run([launcher, sys.executable, "-c", APP], env=env, check=True, timeout=120)  # noqa: S603
    archive = b"".join(p.read_bytes() for p in (tmp_path / "archive").rglob("*.jsonl"))
    assert b"secret_fetch aws.secretsmanager" in archive
    assert b"auto-value-0123456789" not in archive


def test_provtrace_instrument_lists_it() -> None:
    """(This environment holds no other provtrace instrumentation; the hvac tests' environment
    holds both, and checks that both are found.)"""
    code = "import provtrace, json; print(json.dumps(provtrace.instrument()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)  # noqa: S603
    assert "botocore" in set(json.loads(out.stdout.strip().splitlines()[-1]))

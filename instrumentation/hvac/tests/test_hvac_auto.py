"""``opentelemetry-instrument`` and ``provtrace.instrument()`` both find the instrumentation, the
latter next to another provtrace instrumentation (botocore's, which these tests' environment
holds for the two-store canary)."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import hvac

from provtrace.testing import OpenBao, run_python

APP = """
import os, hvac, provtrace
client = hvac.Client(url=os.environ["AUTO_BAO_URL"], token=os.environ["AUTO_BAO_TOKEN"])
h = provtrace.configure(service_name="auto")
with provtrace.decision("auto", trigger="test", actor="agent"):
    client.secrets.kv.v2.read_secret_version(path=os.environ["AUTO_PATH"], mount_point="kv",
                                             raise_on_deleted_version=True)
h.shutdown(30)
"""


def test_opentelemetry_instrument_turns_it_on(openbao: OpenBao, tmp_path: Path) -> None:
    launcher = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert launcher is not None
    path = "auto/token-" + secrets.token_hex(4)
    value = "auto-value-" + secrets.token_urlsafe(16)
    root = hvac.Client(url=openbao.url, token=openbao.root_token)
    root.secrets.kv.v2.create_or_update_secret(path=path, secret={"token": value}, mount_point="kv")
    env = {
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "AUTO_BAO_URL": openbao.url,
        "AUTO_BAO_TOKEN": openbao.root_token,
        "AUTO_PATH": path,
    }
    run_python(APP, tmp_path, env=env, command=[launcher, sys.executable])
    archive = b"".join(p.read_bytes() for p in (tmp_path / "archive").rglob("*.jsonl"))
    assert b"secret_fetch vault" in archive
    assert f"kv/{path}".encode() in archive
    assert value.encode() not in archive


def test_provtrace_instrument_lists_it() -> None:
    code = "import provtrace, json; print(json.dumps(provtrace.instrument()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)  # noqa: S603
    assert {"botocore", "hvac"} <= set(json.loads(out.stdout.strip().splitlines()[-1]))

"""The example agent (examples/secops_agent.py) run for real: its MCP firewall server in a
subprocess, its model behind the real openai client (the local model server it starts), its token
read from a real OpenBao with plain hvac, everything recorded into one archive with one signing
key. Tests of the investigator's tools read what it left, as an investigator would."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

from provtrace.integrity import write_key_pair
from provtrace.testing.openbao import OpenBao

REPO = Path(__file__).resolve().parents[1]
AGENT = REPO / "examples" / "secops_agent.py"


@dataclasses.dataclass(frozen=True)
class ExampleRun:
    home: Path
    archive: Path
    private_key: Path
    public_key: Path
    complete: str  # the approved decision INC-4711
    refused: str  # INC-4712, refused by the guard


def seed(bao: OpenBao) -> dict[str, str]:
    """The firewall token at kv/fw-api-token, and the settings of an agent that may read only it
    (what make demo sets up)."""
    mounts = bao.request("GET", "sys/mounts") or {}
    if "kv/" not in mounts.get("data", mounts):
        bao.request("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
    try:
        bao.request("GET", "kv/data/fw-api-token")  # written once per server: the version stays 1
    except urllib.error.HTTPError:
        bao.request("POST", "kv/data/fw-api-token", {"data": {"token": "fwtok-" + secrets.token_urlsafe(18)}})
    token = bao.token_for("fw-read", 'path "kv/data/fw-api-token" { capabilities = ["read"] }')
    return {"VAULT_ADDR": bao.url, "VAULT_TOKEN": token}


def run_example(home: Path, bao: OpenBao, env: dict[str, str] | None = None) -> ExampleRun:
    """Run the example agent once; ``env`` adds settings (e.g. an OTLP endpoint)."""
    keys = home / "keys"
    write_key_pair(keys / "agent.key", keys / "agent.pub")
    result_file = home / "result.json"
    settings = {
        key: value for key, value in os.environ.items() if not key.startswith(("PROVTRACE_", "OTEL_"))
    }
    settings.update(
        {
            "PROVTRACE_HOME": str(home / "agent-home"),
            "PROVTRACE_SIGNING_KEY": str(keys / "agent.key"),
            "SECOPS_RESULT_FILE": str(result_file),
            **seed(bao),
            **(env or {}),
        }
    )
    done = subprocess.run(
        [sys.executable, str(AGENT)], env=settings, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(result_file.read_text())
    return ExampleRun(
        home=home,
        archive=Path(result["archive_dir"]) if result["archive_dir"] else home / "agent-home" / "archive",
        private_key=keys / "agent.key",
        public_key=keys / "agent.pub",
        complete=result["complete_trace_id"],
        refused=result["refused_trace_id"],
    )


@pytest.fixture(scope="session")
def example_run(tmp_path_factory: pytest.TempPathFactory, openbao: OpenBao) -> ExampleRun:
    """One run for the whole session: the tests only read what it left."""
    return run_example(tmp_path_factory.mktemp("example"), openbao)


_PATTERNS = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"), "<time>"),
    (re.compile(r"\+\d\.\d{3}s"), "+N.NNNs"),
    (re.compile(r"\(\d+\.\d{3} s\)"), "(N.NNN s)"),
    (re.compile(r"@[^/\s]+/\d+/[0-9a-f]{8}"), "@<host>/<pid>/<nonce>"),
]
_IDS = re.compile(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{32}\b|\b[0-9a-f]{16}\b|\b[0-9a-f]{12}…")


def normalise(text: str, *paths: Path) -> str:
    """Output with what changes from run to run replaced: times, ids, digests, hosts, paths.
    Ids and digests are numbered in order of first appearance, so equal ones stay equal."""
    for path in paths:
        text = text.replace(str(path), "<dir>")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    seen: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        token = match.group(0)
        kind = {64: "sha", 32: "id", 16: "id16"}.get(len(token), "sha")
        key = token.rstrip("…")
        if key not in seen:
            seen[key] = f"<{kind}-{sum(1 for v in seen.values() if v.startswith(f'<{kind}-')) + 1}>"
        return seen[key] + ("…" if token.endswith("…") else "")

    return _IDS.sub(number, text)

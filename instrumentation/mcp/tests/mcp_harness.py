"""The MCP instrumentation's test harness: real MCP processes on the mcp line of this environment
(or, for cross-line tests, with the server on another environment's line), and what each side's
provtrace wrote. The environments themselves are nox's (noxfile.py, requirements/)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from provtrace.testing import Archive, SpanRecord

APPS = Path(__file__).resolve().parent / "apps"
# An interpreter whose environment has the other mcp line (set by the nox session of one line).
PEER_ENV = "PROVTRACE_MCP_PEER_PYTHON"
# The unpacked source distribution of the installed mcp, whose tests test_mcp_suite.py runs (set by
# the mcp_suite nox session, which also installs their dependencies).
SUITE_ENV = "PROVTRACE_MCP_SUITE"
RUN_TIMEOUT_S = 240


@dataclasses.dataclass
class Python:
    """An interpreter to run the test apps with, and the MCP SDK line it has."""

    executable: str
    line: int
    env: dict[str, str]
    instrument: str  # how the apps turn the instrumentation on (see apps/common.py)


@dataclasses.dataclass
class Run:
    """One run of the test agent against the test server: what the agent printed (the server's
    stderr reaches the agent's), and what each side's provtrace wrote."""

    out: dict[str, Any]
    agent_home: Path
    server_home: Path
    stderr: str

    @property
    def trace_id(self) -> str:
        return str(self.out["trace_id"])

    def records(self, side: str) -> list[SpanRecord]:
        return Archive((self.agent_home if side == "agent" else self.server_home) / "archive").records()

    def spans(self, side: str, trace_id: str | None = None) -> list[SpanRecord]:
        """The side's spans of the trace (seals excluded), in start order."""
        wanted = trace_id or self.trace_id
        found = [r for r in self.records(side) if r.trace_id == wanted and not r.is_seal]
        return sorted(found, key=lambda r: r.start_ns)

    def files_bytes(self) -> bytes:
        """Every byte either side's provtrace wrote (archive, spool, quarantine)."""
        return b"".join(
            p.read_bytes()
            for home in (self.agent_home, self.server_home)
            for p in sorted(home.rglob("*"))
            if p.is_file()
        )

    def quarantined(self) -> list[Path]:
        return [
            p for home in (self.agent_home, self.server_home) for p in (home / "quarantine").glob("*.json")
        ]


def run_apps(
    python: Python,
    scenario: str,
    transport: str,
    tmp_path: Path,
    *,
    agent_env: dict[str, str] | None = None,
    server_env: dict[str, str] | None = None,
    command: list[str] | None = None,
    client: str = "tools_agent.py",
    server: Python | None = None,
) -> Run:
    """Run ``apps/tools_agent.py`` (which starts the server), or another ``client`` from apps/, in
    a subprocess, with each side's provtrace home under ``tmp_path``; ``command`` replaces the
    interpreter (opentelemetry-instrument), and the server runs on ``server`` when given."""
    agent_home, server_home = tmp_path / "agent", tmp_path / "server"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PROVTRACE_", "OTEL_", "MCP_TEST_"))}
    env = {
        **base,
        **python.env,
        "PROVTRACE_HOME": str(agent_home),
        "PROVTRACE_HEARTBEAT_INTERVAL": "3600",
        "MCP_TEST_INSTRUMENT": python.instrument,
        "MCP_TEST_SERVER_ENV": json.dumps({"PROVTRACE_HOME": str(server_home), **(server_env or {})}),
        "MCP_TEST_SERVER_PYTHON": server.executable if server else python.executable,
        **(agent_env or {}),
    }
    argv = [*(command or [python.executable]), str(APPS / client), scenario, transport]
    result = subprocess.run(  # noqa: S603 - the test apps, with this interpreter
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"agent failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return Run(json.loads(result.stdout.strip().splitlines()[-1]), agent_home, server_home, result.stderr)

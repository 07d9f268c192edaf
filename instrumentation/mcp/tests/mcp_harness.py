"""The MCP instrumentation's test harness: real MCP processes on mcp 2.x (this environment) and
mcp 1.x (a separate environment built once and cached outside the repository), and what each
side's provtrace wrote."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from provtrace.model import SpanRecord
from provtrace.readers.archive import ArchiveSource

REPO = Path(__file__).resolve().parents[3]
APPS = Path(__file__).resolve().parent / "apps"
MCP1 = "mcp==1.30.0"
RUN_TIMEOUT_S = 240
INSTALL_TIMEOUT_S = 900


@dataclasses.dataclass
class Python:
    """An interpreter to run the test apps with, and the MCP SDK line it has."""

    executable: str
    line: int
    env: dict[str, str]
    instrument: str  # how the apps turn the instrumentation on (see apps/common.py)


def mcp1_python() -> Python:
    """mcp 1.x next to this repository's sources (on PYTHONPATH, so the environment never points
    at a stale checkout); the instrumentation is turned on directly, without entry points."""
    python = _mcp1_environment()
    path = os.pathsep.join(str(p) for p in (REPO / "src", REPO / "instrumentation" / "mcp" / "src"))
    return Python(str(python), 1, {"PYTHONPATH": path}, "direct")


def _requirements() -> list[str]:
    """mcp 1.x and every runtime dependency of provtrace and this instrumentation."""
    requirements = {MCP1}
    for dist in ("provtrace", "provtrace-instrumentation-mcp"):
        for requirement in metadata.requires(dist) or []:
            name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower()
            if "extra ==" not in requirement and not name.startswith("provtrace"):
                requirements.add(requirement)
    return sorted(requirements)


def _mcp1_environment() -> Path:
    """Built under the user's cache directory, keyed by Python version and requirements, under a
    lock, and moved into place only when complete."""
    requirements = _requirements()
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "provtrace" / "venvs"
    target = cache / f"mcp1-py{sys.version_info[0]}{sys.version_info[1]}-{key}"
    python = target / "bin" / "python"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not python.exists():
            building = target.with_name(target.name + ".building")
            shutil.rmtree(building, ignore_errors=True)
            venv = [sys.executable, "-m", "venv", str(building)]
            subprocess.run(venv, check=True, timeout=INSTALL_TIMEOUT_S)  # noqa: S603 - a fixed command
            subprocess.run(  # noqa: S603 - pip with this project's own requirements
                [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements],
                check=True,
                timeout=INSTALL_TIMEOUT_S,
            )
            building.rename(target)
    return python


@dataclasses.dataclass
class Run:
    """One run of the test agent against the test server: what the agent printed, and what each
    side's provtrace wrote."""

    out: dict[str, Any]
    agent_home: Path
    server_home: Path

    @property
    def trace_id(self) -> str:
        return str(self.out["trace_id"])

    def records(self, side: str) -> list[SpanRecord]:
        archive = (self.agent_home if side == "agent" else self.server_home) / "archive"
        return list(ArchiveSource(archive).all_spans()) if archive.is_dir() else []

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
) -> Run:
    """Run ``apps/tools_agent.py`` (which starts the server) in a subprocess, with each side's
    provtrace home under ``tmp_path``; ``command`` replaces the interpreter (opentelemetry-instrument)."""
    agent_home, server_home = tmp_path / "agent", tmp_path / "server"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PROVTRACE_", "OTEL_", "MCP_TEST_"))}
    env = {
        **base,
        **python.env,
        "PROVTRACE_HOME": str(agent_home),
        "PROVTRACE_HEARTBEAT_INTERVAL": "3600",
        "MCP_TEST_INSTRUMENT": python.instrument,
        "MCP_TEST_SERVER_ENV": json.dumps({"PROVTRACE_HOME": str(server_home), **(server_env or {})}),
        **(agent_env or {}),
    }
    argv = [*(command or [python.executable]), str(APPS / "tools_agent.py"), scenario, transport]
    result = subprocess.run(  # noqa: S603 - the test apps, with this interpreter
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"agent failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return Run(json.loads(result.stdout.strip().splitlines()[-1]), agent_home, server_home)

"""The MCP instrumentation's test harness: real MCP processes on mcp 2.x (this environment) and
mcp 1.x (a separate environment built once and cached outside the repository), what each side's
provtrace wrote, and mcp's own test suite with its test dependencies (cached the same way)."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from provtrace.model import SpanRecord
from provtrace.readers.archive import ArchiveSource

REPO = Path(__file__).resolve().parents[3]
APPS = Path(__file__).resolve().parent / "apps"
MCP1 = "mcp==1.30.0"
# What mcp's own tests need besides mcp (its dev dependency group, the parts its server tests use).
MCP_SUITE_REQUIREMENTS = (
    "pytest>=8.4.0",
    "inline-snapshot>=0.23.0",
    "dirty-equals>=0.9.0",
    "logfire>=3.0.0",
    "blockbuster>=1.5.27",
    "trio>=0.26.2",
)
SOURCES = os.pathsep.join(str(REPO / p) for p in ("src", "instrumentation/mcp/src"))
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
    python = _environment("mcp1", _requirements(MCP1))
    return Python(str(python), 1, {"PYTHONPATH": SOURCES}, "direct")


@dataclasses.dataclass(frozen=True)
class Suite:
    """mcp's own test suite, from the sdist of the mcp installed here, and an interpreter that
    has its test dependencies (and provtrace's sources on PYTHONPATH, as for mcp 1.x)."""

    python: str
    root: Path
    env: dict[str, str]


def mcp_suite() -> Suite:
    version = metadata.version("mcp")
    python = _environment("mcp-suite", _requirements(f"mcp=={version}", *MCP_SUITE_REQUIREMENTS))
    return Suite(str(python), _sdist(python, f"mcp=={version}"), {"PYTHONPATH": SOURCES})


def _requirements(*extra: str) -> list[str]:
    """``extra`` and every runtime dependency of provtrace and this instrumentation."""
    requirements = set(extra)
    for dist in ("provtrace", "provtrace-instrumentation-mcp"):
        for requirement in metadata.requires(dist) or []:
            name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower()
            if "extra ==" not in requirement and not name.startswith("provtrace"):
                requirements.add(requirement)
    return sorted(requirements)


def _cache(kind: str) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "provtrace" / kind
    cache.mkdir(parents=True, exist_ok=True)
    return cache


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    with open(cache / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _environment(label: str, requirements: list[str]) -> Path:
    """Built under the user's cache directory, keyed by Python version and requirements, under a
    lock, and moved into place only when complete."""
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
    cache = _cache("venvs")
    target = cache / f"{label}-py{sys.version_info[0]}{sys.version_info[1]}-{key}"
    python = target / "bin" / "python"
    with _locked(cache):
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


def _sdist(python: Path, requirement: str) -> Path:
    """The unpacked source distribution of ``requirement`` (it ships the project's tests),
    fetched once with pip and kept in the user's cache directory."""
    cache = _cache("sdists")
    target = cache / requirement.replace("==", "-")
    with _locked(cache):
        if not target.is_dir():
            building = target.with_name(target.name + ".building")
            shutil.rmtree(building, ignore_errors=True)
            download = ["download", "--quiet", "--no-deps", "--no-binary", ":all:", "--dest", str(building)]
            subprocess.run(  # noqa: S603 - pip, for a pinned package of this project's tests
                [str(python), "-m", "pip", *download, requirement],
                check=True,
                timeout=INSTALL_TIMEOUT_S,
            )
            (archive,) = building.glob("*.tar.gz")
            with tarfile.open(archive) as sdist:
                sdist.extractall(building, filter="data")
            (unpacked,) = [p for p in building.iterdir() if p.is_dir()]
            unpacked.rename(target)
            shutil.rmtree(building)
    return target


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
    client: str = "tools_agent.py",
) -> Run:
    """Run ``apps/tools_agent.py`` (which starts the server), or another ``client`` from apps/, in
    a subprocess, with each side's provtrace home under ``tmp_path``; ``command`` replaces the
    interpreter (opentelemetry-instrument)."""
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

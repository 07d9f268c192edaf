"""``opentelemetry-instrument python agent.py`` turns the instrumentation on, on both sides, with no
call to provtrace.instrument() in either program (the server inherits the auto-instrumentation);
and configures provtrace from the environment alone, in a third-party server from PyPI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp_harness import Python, run_apps

import provtrace
from provtrace import conventions as c
from provtrace.testing import KIND_CLIENT, KIND_SERVER, Archive, Recorded, write_key_pair

BIN = Path(sys.executable).parent
TIMEOUT_S = 60


def tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN))
    assert path is not None, f"{name} is not installed next to {sys.executable}"
    return path


def test_opentelemetry_instrument_enables_it_on_client_and_server(line: Python, tmp_path: Path) -> None:
    quiet = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    plain = Python(line.executable, line.line, quiet, "none")
    run = run_apps(
        plain, "roundtrip", "stdio", tmp_path, command=[tool("opentelemetry-instrument"), sys.executable]
    )
    client = [s for s in run.spans("agent") if s.kind == KIND_CLIENT and s.step == c.STEP_TOOL_CALL]
    server = [s for s in run.spans("server") if s.kind == KIND_SERVER and s.step == c.STEP_TOOL_CALL]
    assert len(client) == len(server) == 6
    assert {s.parent_span_id for s in server} == {s.span_id for s in client}


def test_a_pypi_server_under_opentelemetry_instrument_seals_its_side_of_the_callers_trace(
    mcp2: Python, recorded: Recorded, tmp_path: Path
) -> None:
    """mcp-server-time, unchanged, configured by nothing but its environment."""
    home = tmp_path / "time-server"
    key, public = tmp_path / "signing.key", tmp_path / "signing.pub"
    write_key_pair(key, public)
    env = {
        "PROVTRACE_HOME": str(home),
        "PROVTRACE_ARCHIVE_DIR": str(home / "archive"),
        "OTEL_SERVICE_NAME": "mcp-time",
        "PROVTRACE_SIGNING_KEY": str(key),
    }
    server = StdioServerParameters(
        command=tool("opentelemetry-instrument"),
        args=[tool("mcp-server-time"), "--local-timezone", "UTC"],
        env=env,
    )

    async def main() -> tuple[provtrace.Decision, str]:
        with anyio.fail_after(TIMEOUT_S):
            async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                with provtrace.decision("check the clock", trigger="test", actor="test-agent") as decision:
                    result = await session.call_tool("get_current_time", {"timezone": "Europe/Paris"})
        return decision, "".join(getattr(block, "text", "") for block in result.content)

    decision, text = anyio.run(main)  # the session closed: the server has exited
    assert "Europe/Paris" in text
    (client,) = [s for s in recorded.spans() if s.name == "tools/call get_current_time"]
    records = Archive(home / "archive").records()
    (served,) = [r for r in records if r.step == c.STEP_TOOL_CALL]
    assert served.kind == KIND_SERVER
    assert served.name == "tools/call get_current_time"
    assert served.service_name == "mcp-time"
    assert served.trace_id == decision.trace_id
    assert served.parent_span_id == f"{client.context.span_id:016x}"
    assert served.parent_is_remote
    assert served.attributes[c.DECISION_ID] == decision.id
    assert served.attributes[c.ACTOR_ID] == "mcp-time"  # the server's own name; the caller is a claim
    assert served.attributes[c.CLAIM_ACTOR_ID] == "test-agent"
    assert served.attributes[c.INPUT_SHA256] == dict(client.attributes or {})[c.INPUT_SHA256]
    assert served.attributes[c.OUTPUT_SHA256] == dict(client.attributes or {})[c.OUTPUT_SHA256]
    (seal,) = [
        r
        for r in records
        if r.is_seal and any(s.startswith(served.span_id) for s in r.attr_strings(c.SEAL_SPANS))
    ]
    assert seal.attributes[c.SEAL_COMPLETENESS] == c.COMPLETENESS_COMPLETE
    assert [r.attributes[c.SEAL_REASON] for r in records if r.is_seal][
        -1
    ] == c.SEAL_REASON_CLOSE  # shut down at exit
    verified = subprocess.run(  # noqa: S603 - provtrace's own CLI
        [
            tool("provtrace"),
            "verify",
            "--stream",
            "--archive",
            str(home / "archive"),
            "--public-key",
            str(public),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("PROVTRACE_")},
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("VERIFIED")

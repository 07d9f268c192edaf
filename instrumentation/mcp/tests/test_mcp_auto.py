"""``opentelemetry-instrument python agent.py`` turns the instrumentation on, on both sides, with no
call to provtrace.instrument() in either program (the server inherits the auto-instrumentation)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from mcp_harness import Python, run_apps

from provtrace import conventions as c
from provtrace.model import KIND_CLIENT, KIND_SERVER


def test_opentelemetry_instrument_enables_it_on_client_and_server(mcp2: Python, tmp_path: Path) -> None:
    launcher = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert launcher is not None
    quiet = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    plain = Python(mcp2.executable, 2, quiet, "none")
    run = run_apps(plain, "roundtrip", "stdio", tmp_path, command=[launcher, sys.executable])
    client = [s for s in run.spans("agent") if s.kind == KIND_CLIENT and s.step == c.STEP_TOOL_CALL]
    server = [s for s in run.spans("server") if s.kind == KIND_SERVER and s.step == c.STEP_TOOL_CALL]
    assert len(client) == len(server) == 6
    assert {s.parent_span_id for s in server} == {s.span_id for s in client}

"""End to end through the real evidence stack: an instrumented agent (this process) calls a real MCP
server over stdio; both send their evidence to the OpenTelemetry Collector, and Jaeger shows one
trace holding the agent's and the server's spans, correctly parented, digests intact."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp_harness import APPS
from provtrace_instrumentation_mcp import MCPInstrumentor

import provtrace
from provtrace import conventions as c
from provtrace.readers.jaeger import JaegerSource, interpretations
from provtrace.testing import (
    KIND_CLIENT,
    KIND_SERVER,
    Agent,
    SpanRecord,
    Stack,
    in_jaeger,
    instrumented,
    wait_for_spans,
)
from provtrace.verify import Keys, exact, verify_trace

pytestmark = pytest.mark.integration


@pytest.fixture
def instrumented_agent(stack_agent: Agent) -> Iterator[Agent]:
    with instrumented(MCPInstrumentor()):
        yield stack_agent


async def open_rule_over_stdio(stack: Stack, server_home: Path) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PROVTRACE_", "OTEL_"))},
        "OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp_http_endpoint,
        "PROVTRACE_HOME": str(server_home),
        "PROVTRACE_HEARTBEAT_INTERVAL": "3600",
    }
    params = StdioServerParameters(
        command=sys.executable, args=[str(APPS / "tools_server.py"), "stdio"], env=env
    )
    with anyio.fail_after(120):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            with provtrace.decision("contain INC-4711", trigger="alert:INC-4711", actor="secops-agent") as d:
                result = await session.call_tool(
                    "open_rule", {"sg": "sg-123", "port": 443, "cidr": "10.0.0.0/24"}
                )
                assert not (result.isError if hasattr(result, "isError") else result.is_error)  # 1.x, 2.x
    return str(d.trace_id)


def test_agent_and_server_spans_arrive_in_one_jaeger_trace(instrumented_agent: Agent, tmp_path: Path) -> None:
    stack = instrumented_agent.stack
    trace_id = anyio.run(open_rule_over_stdio, stack, tmp_path / "server")
    assert instrumented_agent.handle.force_flush(timeout_s=60)

    def from_jaeger() -> list[SpanRecord]:
        return [r for r in in_jaeger(stack, trace_id) if not r.is_seal]

    # decision + client call (agent), server call + secret fetch + policy check + action (server)
    spans = {
        r.name + "/" + str(r.kind): r for r in wait_for_spans(from_jaeger, 6, f"trace {trace_id} in Jaeger")
    }
    client = spans[f"tools/call open_rule/{KIND_CLIENT}"]
    server = spans[f"tools/call open_rule/{KIND_SERVER}"]
    decision = spans["decision contain INC-4711/1"]
    assert client.service_name == "integration-agent"
    assert server.service_name == "test-mcp-server"
    assert client.parent_span_id == decision.span_id
    assert server.parent_span_id == client.span_id
    assert client.attributes[c.OUTPUT_SHA256] == server.attributes[c.OUTPUT_SHA256]
    assert server.attributes[c.DECISION_ID] == decision.attributes[c.DECISION_ID]
    nested = [r for r in spans.values() if r.parent_span_id == server.span_id]
    assert sorted(r.step or "" for r in nested) == [c.STEP_ACTION, c.STEP_POLICY_CHECK, c.STEP_SECRET_FETCH]
    sent = {r.span_id: r for r in instrumented_agent.sent(trace_id)}
    assert sent[client.span_id] == client  # byte-for-byte the record the agent sealed
    # Both sides verify from Jaeger, through the v3 API and the lossy v1 API (which drops the
    # flag saying the server's parent is remote: provtrace tries both).
    assert server.parent_is_remote
    for api in ("v3", "v1"):
        report = JaegerSource(stack.jaeger_url, api=api).trace(trace_id)
        result = verify_trace(
            trace_id, report, Keys({}, False), readings=interpretations if api == "v1" else exact
        )
        assert [f.kind for f in result.findings if f.severity == "error"] == [], api

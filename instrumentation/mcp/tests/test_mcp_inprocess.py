"""The instrumentation in this process, on mcp 2.x: span shapes per capture mode, what travels in
``_meta``, a clean uninstrument, and recording that never breaks a call."""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp.server.mcpserver", reason="the in-process tests use mcp 2.x's API")

from mcp import Client
from mcp.client.session import ClientSession
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import Context, MCPServer
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import SpanKind
from provtrace_instrumentation_mcp import TARGETS, MCPInstrumentor, protocol
from provtrace_instrumentation_mcp.server import ProvenanceMiddleware

import provtrace
from provtrace import conventions as c
from provtrace import digest
from provtrace.instrumentation import taint
from provtrace.testing import Recorded, make_recorded


def build() -> MCPServer:
    server = MCPServer("inproc")

    @server.tool()
    def lookup(sg: str, token: str = "") -> dict[str, Any]:
        return {"sg": sg, "rules": [{"port": 22}], "note": f"authorized by {token}" if token else ""}

    @server.tool()
    def meta(ctx: Context) -> str:
        return json.dumps(dict(ctx.request_context.meta or {}))

    return server


def call(server: MCPServer, body: Callable[[Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with Client(server) as client:
            with provtrace.decision("d", trigger="t", actor="agent", nhi="svc-agent"):
                return await body(client)

    return anyio.run(main)


def tool_spans(recorded: Recorded) -> dict[SpanKind, Any]:
    return {s.kind: s for s in recorded.spans() if (s.attributes or {}).get(c.STEP) == c.STEP_TOOL_CALL}


@pytest.mark.parametrize(
    ("mode", "content", "digests"),
    [("full", True, True), ("redacted", True, True), ("digest", False, True), ("none", False, False)],
)
def test_capture_modes_on_both_sides(tmp_path: Path, mode: str, content: bool, digests: bool) -> None:
    recorded = make_recorded(tmp_path, capture_content=mode)
    instrumentor = MCPInstrumentor()
    instrumentor.instrument()
    try:
        call(build(), lambda client: client.call_tool("lookup", {"sg": "sg-123"}))
    finally:
        instrumentor.uninstrument()
        recorded.handle.shutdown(timeout_s=10)
    spans = tool_spans(recorded)
    assert set(spans) == {SpanKind.CLIENT, SpanKind.SERVER}
    for span in spans.values():
        attributes = dict(span.attributes or {})
        assert attributes[c.CAPTURE_MODE] == mode
        assert (c.GEN_AI_TOOL_CALL_ARGUMENTS in attributes) is content
        assert (c.GEN_AI_TOOL_CALL_RESULT in attributes) is content
        assert (c.INPUT_SHA256 in attributes) is digests
        if digests:
            assert attributes[c.INPUT_SHA256] == digest({"sg": "sg-123"})
    client, server = spans[SpanKind.CLIENT], spans[SpanKind.SERVER]
    assert client.name == server.name == "tools/call lookup"
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id


def test_meta_carries_the_callers_claims_and_where_its_secrets_are(recorded: Recorded) -> None:
    taint("agtok-0123456789abcdef")
    seen = call(build(), lambda client: client.call_tool("meta", {"token": "agtok-0123456789abcdef"}))
    meta = json.loads(seen.content[0].text)
    decision = recorded.span("decision d")
    assert meta[protocol.META_CALLER] == {
        "decision_id": dict(decision.attributes or {})[c.DECISION_ID],
        "actor_id": "agent",
        "nhi_id": "svc-agent",
    }
    assert meta[protocol.META_TAINTED] == [["/arguments/token", 0, 22]]


def test_a_tool_result_holding_a_known_secret_is_redacted_and_marked(recorded: Recorded) -> None:
    taint("agtok-0123456789abcdef")
    result = call(
        build(), lambda client: client.call_tool("lookup", {"sg": "sg-1", "token": "agtok-0123456789abcdef"})
    )
    text = result.content[0].text
    start = text.index("agtok-0123456789abcdef")  # the agent gets the real value, marked
    assert result.meta[protocol.META_TAINTED] == [["/content/0/text", start, start + 22]]  # once per value
    for span in tool_spans(recorded).values():
        assert "agtok-0123456789abcdef" not in json.dumps(dict(span.attributes or {}))


def test_uninstrument_undoes_every_wrap_and_removes_the_middleware(tmp_path: Path) -> None:
    instrumentor = MCPInstrumentor()
    instrumentor.instrument()
    server = build()
    assert any(isinstance(m, ProvenanceMiddleware) for m in server._lowlevel_server.middleware)
    assert hasattr(ClientSession.send_request, "__wrapped__")
    assert hasattr(Server.__init__, "__wrapped__")
    instrumentor.uninstrument()
    assert not hasattr(ClientSession.send_request, "__wrapped__")
    assert not hasattr(Server.__init__, "__wrapped__")
    assert not any(isinstance(m, ProvenanceMiddleware) for m in server._lowlevel_server.middleware)
    recorded = make_recorded(tmp_path)
    try:
        call(server, lambda client: client.call_tool("lookup", {"sg": "sg-1"}))
        assert tool_spans(recorded) == {}
        instrumentor.instrument()  # and on again: a fresh generation of hooks applies
        call(build(), lambda client: client.call_tool("lookup", {"sg": "sg-1"}))
        assert set(tool_spans(recorded)) == {SpanKind.CLIENT, SpanKind.SERVER}
    finally:
        instrumentor.uninstrument()
        recorded.handle.shutdown(timeout_s=10)


def test_a_failure_inside_recording_never_breaks_the_call(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(method: object, params: object) -> protocol.Call | None:
        if method == protocol.TOOLS_CALL:
            raise MemoryError("simulated failure inside provtrace")
        return protocol.describe(method, params)

    monkeypatch.setattr("provtrace_instrumentation_mcp.client.describe", broken)
    monkeypatch.setattr("provtrace_instrumentation_mcp.server.describe", broken)
    result = call(build(), lambda client: client.call_tool("lookup", {"sg": "sg-1"}))
    assert result.structured_content["sg"] == "sg-1"
    assert recorded.handle.counters["recording_errors"] == 2


def provtrace_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What provtrace logged at WARNING or above, as the application's root logger saw it."""
    return [r for r in caplog.records if r.name.startswith("provtrace") and r.levelno >= logging.WARNING]


def plain_call(server: MCPServer) -> Any:
    """A call from a plain in-process client: no decision, no provtrace claims."""

    async def main() -> Any:
        async with Client(server) as client:
            return await client.call_tool("lookup", {"sg": "sg-1"})

    return anyio.run(main)


def test_a_call_from_a_plain_client_is_served_as_complete_evidence_and_logs_nothing(
    recorded: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    server = build()  # with provtrace's middleware; then this process's client side is unwrapped
    for target in TARGETS[2]:
        if not target.module.startswith("mcp.server"):
            unwrap(*target.owner(importlib.import_module(target.module)))
    caplog.set_level(logging.WARNING)
    result = plain_call(server)
    assert recorded.handle.force_flush(timeout_s=10)  # the sealer has checked (and reported) it
    assert result.structured_content["sg"] == "sg-1"
    assert provtrace_records(caplog) == []
    counters = recorded.handle.counters
    assert counters["segments_complete"] >= 1
    assert counters["segments_incomplete"] == counters["segments_quarantined"] == 0
    (step,) = tool_spans(recorded).values()
    decision = recorded.span("decision serve tools/call lookup")
    assert step.kind is SpanKind.SERVER
    assert step.parent is not None
    assert step.parent.span_id == decision.context.span_id
    assert dict(step.attributes or {})[c.DECISION_ID] == dict(decision.attributes or {})[c.DECISION_ID]
    assert dict(decision.attributes or {})[c.ACTOR_ID] == "inproc"


def test_incomplete_evidence_is_reported_on_provtraces_own_logger(
    recorded: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    """The control for the test above: an instrumented client step outside any decision is
    incomplete by the contract, and its report reaches the root logger once flushed."""
    caplog.set_level(logging.WARNING)
    plain_call(build())
    assert recorded.handle.force_flush(timeout_s=10)
    (report,) = provtrace_records(caplog)
    assert report.name == "provtrace.violations"
    assert report.levelno == logging.ERROR
    assert "STRUCT-ROOT" in report.getMessage()
    assert report.threadName == "provtrace-sealer"  # never in the library's request path

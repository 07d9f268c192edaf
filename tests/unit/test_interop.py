"""What instrumentations build on: tool-call options, adopting a span someone else started,
continuing a decision opened in another process, JSON-RPC errors, and taint across processes."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import provtrace
from provtrace import conventions as c
from provtrace.content import MAX_TAINTED_SPANS, REDACTOR, SECRETS, digest, taint_spans, tainted_spans
from provtrace.steps.calls import ToolCallSpec
from provtrace.steps.interop import adopted, continued_decision
from tests.conftest import Recorded


class RpcError(Exception):
    """Stands in for an MCP error carrying a JSON-RPC error code."""


def test_tool_call_options_follow_a_protocols_conventions(recorded: Recorded) -> None:
    with provtrace.decision("d", trigger="t", actor="agent"):
        with ToolCallSpec(
            "fw://rules/sg-1", span_name="resources/read", kind=SpanKind.CLIENT, operation=None
        ):
            pass
    span = recorded.span("resources/read")
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes[c.GEN_AI_TOOL_NAME] == "fw://rules/sg-1"
    assert c.GEN_AI_OPERATION_NAME not in attributes


def test_an_adopted_span_becomes_the_step_and_is_left_open_for_its_owner(recorded: Recorded) -> None:
    tracer = recorded.handle.tracer_provider.get_tracer("some-library")
    with provtrace.decision("d", trigger="t", actor="agent") as decision:
        with tracer.start_as_current_span("lib span", kind=SpanKind.SERVER, end_on_exit=False) as owned:
            with adopted(ToolCallSpec("lookup", span_name="tools/call lookup"), owned) as tool:
                assert trace.get_current_span() is owned
                tool.record_input({"sg": "sg-1"})
                tool.record_output({"rules": []})
            assert owned.is_recording()  # the step finished; the span is its owner's to end
            assert [s.name for s in recorded.spans()] == []
            owned.set_attribute("library.detail", "kept")
            owned.end()
    span = recorded.span("tools/call lookup")
    attributes = dict(span.attributes or {})
    assert span.kind is SpanKind.SERVER
    assert attributes[c.STEP] == c.STEP_TOOL_CALL
    assert attributes[c.DECISION_ID] == decision.id and attributes[c.ACTOR_ID] == "agent"
    assert attributes[c.INPUT_SHA256] == digest({"sg": "sg-1"})
    assert attributes[c.OUTPUT_SHA256] == digest({"rules": []})
    assert attributes["library.detail"] == "kept"


def test_an_adopted_step_records_the_bodys_exception(recorded: Recorded) -> None:
    span = recorded.handle.tracer.start_span("lib span")
    with pytest.raises(KeyError), adopted(ToolCallSpec("t"), span):
        raise KeyError("boom")
    assert span.is_recording()
    span.end()
    assert dict(recorded.span("execute_tool t").attributes or {})[c.ERROR_TYPE] == "KeyError"


def test_a_json_rpc_error_code_is_the_error_type_even_when_an_exception_ends_the_step(
    recorded: Recorded,
) -> None:
    with pytest.raises(RpcError), ToolCallSpec("t") as tool:
        tool.mark_rpc_error(-32602, "bad params for token hvs.CAESIJ0123456789abcdefghij")
        raise RpcError("invalid params")
    span = recorded.span("execute_tool t")
    attributes = dict(span.attributes or {})
    assert attributes[c.ERROR_TYPE] == attributes[c.RPC_RESPONSE_STATUS_CODE] == "-32602"
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


def test_a_continued_decision_carries_the_remote_id_and_keeps_its_facts_local(recorded: Recorded) -> None:
    with provtrace.decision("caller", trigger="t", actor="agent") as outer:
        with provtrace.policy_check("p", input={}) as policy:
            policy.allow(reason="caller side")
        with continued_decision("remote-decision-1", actor="tool-server", context=outer.context):
            with pytest.raises(provtrace.ProvenanceViolation):  # the caller's policy does not count
                with provtrace.action("x", target="y", params={}, require=("policy",)):
                    pass
            with provtrace.secret_fetch(store="vault", ref="kv/x", nhi="svc") as fetch:
                fetch.record_value("value-0123456789")
        assert provtrace.steps.current_decision() is outer.state
    attributes = dict(recorded.span("secret_fetch vault").attributes or {})
    assert attributes[c.DECISION_ID] == "remote-decision-1"
    assert attributes[c.ACTOR_ID] == "tool-server"


def test_taint_travels_as_pointers_and_spans_and_only_adds_redaction() -> None:
    SECRETS.add("peer-secret-0123")
    value = {"content": [{"text": "use peer-secret-0123 now"}], "a/b~c": ["peer-secret-0123"], "n": 1}
    spans = tainted_spans(value)
    assert spans == [("/content/0/text", 4, 20)]  # one entry per value: the peer taints it everywhere
    assert tainted_spans({"a/b~c": ["peer-secret-0123"]}) == [("/a~1b~0c/0", 0, 16)]
    SECRETS.clear()
    assert taint_spans(value, [list(span) for span in spans]) == 1
    assert REDACTOR.text("x peer-secret-0123") == "x [REDACTED:secret]"
    SECRETS.clear()
    hostile = [["/content/0/text", 0, 3], ["/missing", 0, 9], ["content", 0, 9], "junk", ["/n", 0, 1]]
    assert taint_spans(value, hostile) == 0  # too short, absent, malformed, not a string
    assert taint_spans(value, {"not": "a list"}) == 0
    assert len(SECRETS) == 0
    distinct = [f"peer-secret-{i:04d}" for i in range(MAX_TAINTED_SPANS + 5)]
    for secret in distinct:
        SECRETS.add(secret)
    assert len(tainted_spans({"k": distinct})) == MAX_TAINTED_SPANS

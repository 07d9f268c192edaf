"""provtrace.genai without a client: the decorator's message rule, the message shape, the rules for
a span shared with other tracing, and innermost wrapping."""

from __future__ import annotations

from typing import Any

import wrapt
from opentelemetry.trace import SpanKind, Status, StatusCode

import provtrace
from provtrace import conventions as c
from provtrace import genai
from provtrace.instrumentation import taint, tracer_provider
from tests.conftest import Recorded

USER = [{"role": "user", "parts": [{"type": "text", "content": "open 443?"}]}]


def attrs(recorded: Recorded, name: str) -> dict[str, Any]:
    return dict(recorded.span(name).attributes or {})


def test_a_decorated_model_call_records_its_messages_and_answer_in_the_genai_shape(
    recorded: Recorded,
) -> None:
    @provtrace.llm_call(model="m", provider="p")
    def ask(messages: list[dict[str, Any]], temperature: float = 0.0) -> dict[str, Any]:
        call = {
            "id": "call_9",
            "type": "function",
            "function": {"name": "open_rule", "arguments": '{"port": 443}'},
        }
        return {
            "choices": [
                {"message": {"role": "assistant", "tool_calls": [call]}, "finish_reason": "tool_calls"}
            ]
        }

    with provtrace.decision("d", trigger="t", actor="agent"):
        ask([{"role": "user", "content": "open 443?"}], temperature=0.3)
        with provtrace.tool_call("open_rule") as tool:
            tool.record_input({"port": 443})
            tool.record_output("ok")
    llm = attrs(recorded, "chat m")
    assert llm[c.INPUT_SHA256] == provtrace.digest(USER)
    proposal = {"type": "tool_call", "id": "call_9", "name": "open_rule", "arguments": {"port": 443}}
    assert llm[c.OUTPUT_SHA256] == provtrace.digest(
        [{"role": "assistant", "parts": [proposal], "finish_reason": "tool_call"}]
    )
    (link,) = recorded.span("execute_tool open_rule").links
    assert dict(link.attributes or {}) == {c.LINK_TYPE: c.LINK_TRIGGERED_BY, c.GEN_AI_TOOL_CALL_ID: "call_9"}


def test_a_decorated_model_call_without_chat_messages_records_its_arguments(recorded: Recorded) -> None:
    @provtrace.llm_call(model="m", provider="p")
    def complete(prompt: str, max_tokens: int = 5) -> str:
        return "fine"

    with provtrace.decision("d", trigger="t", actor="agent"):
        complete("hello")
    llm = attrs(recorded, "chat m")
    assert llm[c.INPUT_SHA256] == provtrace.digest({"prompt": "hello", "max_tokens": 5})
    assert llm[c.OUTPUT_SHA256] == provtrace.digest(
        [{"role": "assistant", "parts": [{"type": "text", "content": "fine"}]}]
    )


def test_client_shapes_become_the_genai_shape_without_losing_a_block() -> None:
    anthropic_style = [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "done"}]},
        {"role": "user", "content": [{"type": "document", "source": {"data": "x"}}]},
    ]
    assert genai.chat_messages(anthropic_style, instructions="Be brief.") == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "t1", "name": "f", "arguments": {"a": 1}}],
        },
        {"role": "user", "parts": [{"type": "tool_call_response", "id": "t1", "response": "done"}]},
        {"role": "user", "parts": [{"type": "document", "source": {"data": "x"}}]},
    ]
    openai_style = [{"role": "tool", "tool_call_id": "c1", "content": "42"}]
    assert genai.chat_messages(openai_style) == [
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "42"}]}
    ]
    assert genai.chat_messages(USER) == USER


def test_a_lent_span_takes_the_clients_attributes_on_provtraces_terms(recorded: Recorded) -> None:
    secret = "s3cr3t-value-for-the-lent-span"
    taint(secret)
    provider = tracer_provider()
    assert provider is not None
    tracer = genai.lending_tracer(provider.get_tracer("client"))
    request = genai.Request(provider="p", model="m", messages=USER)
    with provtrace.decision("d", trigger="t", actor="agent"):
        call = genai.start(request)
        assert call is not None
        with call.running():
            span = tracer.start_span(
                "client.call", kind=SpanKind.CLIENT, attributes={"client.url": f"x?k={secret}"}
            )
            span.set_attribute(c.GEN_AI_INPUT_MESSAGES, "raw prompt")
            span.set_attribute("provenance.step", "forged")
            span.set_status(Status(StatusCode.OK))
            span.end()
            inner = tracer.start_span("client.other", kind=SpanKind.CLIENT)  # one span is lent per call
            inner.end()
        call.finish(genai.Response(messages=[]))
    step = attrs(recorded, "chat m")
    assert step["client.url"] == "x?k=[REDACTED:secret]"
    assert step[c.STEP] == c.STEP_LLM_CALL
    assert step[c.GEN_AI_INPUT_MESSAGES] != "raw prompt"
    assert recorded.span("chat m").status.status_code is StatusCode.UNSET
    assert recorded.span("client.other").parent.span_id == recorded.span("chat m").context.span_id  # type: ignore[union-attr]


def test_an_outer_genai_span_for_the_call_is_adopted_and_guarded_after_the_step(recorded: Recorded) -> None:
    provider = tracer_provider()
    assert provider is not None
    tracer = provider.get_tracer("otel.genai")
    outer_attributes = {c.GEN_AI_OPERATION_NAME: "chat", c.GEN_AI_REQUEST_MODEL: "m"}
    with provtrace.decision("d", trigger="t", actor="agent"):
        with tracer.start_as_current_span(
            "chat m", kind=SpanKind.CLIENT, attributes=outer_attributes
        ) as outer:
            call = genai.start(genai.Request(provider="p", model="m", messages=USER))
            assert call is not None
            call.finish(genai.Response(messages=[]))
            outer.set_attribute(c.GEN_AI_INPUT_MESSAGES, "unredacted prompt")
            outer.set_attribute("otel.extra", "kept")
    (step,) = [s for s in recorded.spans() if s.name == "chat m"]
    a = dict(step.attributes or {})
    assert step.instrumentation_scope.name == "otel.genai"  # type: ignore[union-attr]
    assert a[c.STEP] == c.STEP_LLM_CALL
    assert a[c.GEN_AI_INPUT_MESSAGES] == '[{"role":"user","parts":[{"type":"text","content":"open 443?"}]}]'
    assert a["otel.extra"] == "kept"


def test_innermost_wrapping_goes_beneath_a_foreign_wrapper_and_comes_out_exactly() -> None:
    class Client:
        def create(self) -> list[str]:
            return ["client"]

    def foreign(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> list[str]:
        return ["foreign", *wrapped(*args, **kwargs)]

    def ours(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> list[str]:
        return ["ours", *wrapped(*args, **kwargs)]

    wrapt.wrap_function_wrapper(Client, "create", foreign)
    applied = genai.wrap_innermost(Client, "create", ours)
    assert Client().create() == ["foreign", "ours", "client"]
    genai.unwrap_applied(Client, "create", applied)
    assert Client().create() == ["foreign", "client"]

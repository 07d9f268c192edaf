"""Messages through the real ``anthropic`` client against the local model server."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import anthropic
import pytest
import wrapt
from opentelemetry.trace import SpanKind

import provtrace
from provtrace import conventions as c
from provtrace.instrumentation import tracer_provider
from provtrace.testing import (
    Recorded,
    assert_never_recorded,
    attrs,
    content,
    instrumented,
    make_recorded,
    triggered_by,
)
from provtrace.testing.llm_server import Server

MODEL = "fake-claude"
TOOLS = [{"name": "lookup_rule", "input_schema": {"type": "object"}}]
INPUT = [
    {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
    {"role": "user", "parts": [{"type": "text", "content": "bonjour"}]},
]


def client(model_server: Server, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=model_server.url, api_key="test-key", **{"max_retries": 0, **options})


def create(model_server: Server, text: str, **options: Any) -> Any:
    return client(model_server).messages.create(
        model=MODEL,
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": text}],
        **options,
    )


def answer(text: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}]


def test_a_message_is_one_llm_call_with_the_conventions_attributes_and_exact_digests(
    recorded: Recorded, model_server: Server
) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"):
        message = create(model_server, "bonjour", stop_sequences=["END"])
    assert message.content[0].text == "echo: bonjour"
    (step,) = recorded.steps(c.STEP_LLM_CALL)
    a = attrs(step)
    assert step.name == f"chat {MODEL}"
    assert step.kind is SpanKind.CLIENT
    assert a[c.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[c.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert a[c.GEN_AI_REQUEST_STOP_SEQUENCES] == ("END",)
    assert a[c.GEN_AI_RESPONSE_ID] == message.id
    assert a[c.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert a[c.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
    assert a[c.INPUT_SHA256] == provtrace.digest(INPUT)
    assert a[c.OUTPUT_SHA256] == provtrace.digest(answer("echo: bonjour"))
    assert content(step, c.GEN_AI_INPUT_MESSAGES) == INPUT


def test_the_clients_own_span_is_the_step(recorded: Recorded, model_server: Server) -> None:
    """The SDK traces its calls itself; provtrace lends it the step's span: one span per call, with
    the SDK's attributes, and the content the SDK would write in its content mode left out."""
    own = {"tracer_provider": tracer_provider(), "traces": {"content_mode": "content"}}
    with provtrace.decision("ask", trigger="t", actor="agent"):
        client(model_server, open_telemetry=own).messages.create(
            model=MODEL, max_tokens=8, system="Be brief.", messages=[{"role": "user", "content": "bonjour"}]
        )
    spans = [s for s in recorded.spans() if s.kind is SpanKind.CLIENT]
    assert len(spans) == 1
    a = attrs(spans[0])
    assert a[c.STEP] == c.STEP_LLM_CALL
    assert a["anthropic.request.id"].startswith("req_")
    assert a["http.request.method"] == "POST"
    assert content(spans[0], c.GEN_AI_INPUT_MESSAGES) == INPUT  # provtrace's, not the SDK's shape


@pytest.mark.parametrize("how", ["create", "manager", "async create", "async manager"])
def test_a_streamed_message_reaches_the_caller_unchanged_and_digests_like_the_unstreamed_one(
    recorded: Recorded, model_server: Server, how: str
) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "a few words"}],
    }

    async def streamed_async() -> str:
        aclient = anthropic.AsyncAnthropic(base_url=model_server.url, api_key="k", max_retries=0)
        if how == "async create":
            stream = await aclient.messages.create(**request, stream=True)
            return "".join([e.delta.text async for e in stream if e.type == "content_block_delta"])
        async with aclient.messages.stream(**request) as managed:
            return "".join([text async for text in managed.text_stream])

    with provtrace.decision("ask", trigger="t", actor="agent"):
        plain = client(model_server).messages.create(**request)
        if how == "create":
            events = list(client(model_server).messages.create(**request, stream=True))
            text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
        elif how == "manager":
            with client(model_server).messages.stream(**request) as managed:
                text = "".join(managed.text_stream)
        else:
            text = asyncio.run(streamed_async())
    assert text == plain.content[0].text == "echo: a few words"
    unstreamed, streamed = recorded.steps(c.STEP_LLM_CALL)
    assert attrs(streamed)[c.GEN_AI_REQUEST_STREAM] is True
    assert (
        attrs(streamed)[c.OUTPUT_SHA256]
        == attrs(unstreamed)[c.OUTPUT_SHA256]
        == provtrace.digest(answer(text))
    )
    assert c.OUTPUT_PARTIAL not in attrs(streamed)


def test_a_stream_closed_early_ends_the_step_with_what_arrived(
    recorded: Recorded, model_server: Server
) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"):
        stream = create(model_server, "one two three", stream=True)
        for event in stream:
            if event.type == "content_block_delta":
                break
        stream.close()
    (step,) = recorded.steps(c.STEP_LLM_CALL)
    assert attrs(step)[c.OUTPUT_PARTIAL] is True
    assert content(step, c.GEN_AI_OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "echo:"}]}
    ]


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_use_is_a_proposal_that_links_the_tool_call_carrying_it_out(
    recorded: Recorded, model_server: Server, streamed: bool
) -> None:
    with provtrace.decision("contain", trigger="t", actor="agent"):
        if streamed:
            with client(model_server).messages.stream(
                model=MODEL,
                max_tokens=64,
                tools=TOOLS,
                messages=[{"role": "user", "content": 'call:lookup_rule {"sg": "sg-1"}'}],
            ) as managed:
                message = managed.get_final_message()
        else:
            message = create(model_server, 'call:lookup_rule {"sg": "sg-1"}', tools=TOOLS)
        (use,) = [block for block in message.content if block.type == "tool_use"]
        with provtrace.tool_call("lookup_rule") as tool:
            tool.record_input(use.input)
            tool.record_output({"rules": []})
        with provtrace.secret_fetch(store="vault", ref="kv/x", nhi="svc") as fetch:
            fetch.record_value("not-proposed-" + secrets.token_hex(8))
    (step,) = recorded.steps(c.STEP_LLM_CALL)
    assert content(step, c.GEN_AI_OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "tool_call", "id": "toolu_1", "name": "lookup_rule", "arguments": {"sg": "sg-1"}}
    ]
    assert triggered_by(recorded.span("execute_tool lookup_rule")) == [(step.context.span_id, "toolu_1")]
    assert triggered_by(recorded.span("secret_fetch vault")) == []


def test_errors_retries_and_timeouts(recorded: Recorded, model_server: Server) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"):
        with pytest.raises(anthropic.BadRequestError):
            create(model_server, "error:400")
        retried = client(model_server, max_retries=2).messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "ratelimit:2"}]
        )
        with pytest.raises(anthropic.APITimeoutError):
            client(model_server, timeout=0.2).messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hold"}]
            )
    assert retried.content[0].text == "echo: ratelimit:2"
    refused, limited, timed_out = recorded.steps(c.STEP_LLM_CALL)
    assert attrs(refused)[c.ERROR_TYPE] == "BadRequestError"
    assert attrs(limited)["http.request.resend_count"] == 2  # the client's own count, on the step
    assert attrs(limited)[c.OUTPUT_SHA256] == provtrace.digest(answer("echo: ratelimit:2"))
    assert attrs(timed_out)[c.ERROR_TYPE] == "APITimeoutError"
    assert c.OUTPUT_SHA256 not in attrs(refused)
    assert c.OUTPUT_SHA256 not in attrs(timed_out)


def test_with_raw_response_keeps_the_headers_and_records_the_same_answer(
    recorded: Recorded, model_server: Server
) -> None:
    async def async_raw() -> str:
        aclient = anthropic.AsyncAnthropic(base_url=model_server.url, api_key="k", max_retries=0)
        raw = await aclient.messages.with_raw_response.create(
            model=MODEL, max_tokens=8, system="Be brief.", messages=[{"role": "user", "content": "raw"}]
        )
        return str((await raw.parse()).content[0].text)

    with provtrace.decision("ask", trigger="t", actor="agent"):
        raw = client(model_server).messages.with_raw_response.create(
            model=MODEL, max_tokens=8, system="Be brief.", messages=[{"role": "user", "content": "raw"}]
        )
        assert raw.headers["request-id"].startswith("req_")
        assert raw.parse().content[0].text == asyncio.run(async_raw()) == "echo: raw"
    assert {attrs(step)[c.OUTPUT_SHA256] for step in recorded.steps(c.STEP_LLM_CALL)} == {
        provtrace.digest(answer("echo: raw"))
    }


def test_uninstrument_restores_the_client(recorded: Recorded, model_server: Server) -> None:
    import anthropic._base_client as base_client
    from anthropic.resources.messages.messages import Messages
    from provtrace_instrumentation_anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().uninstrument()
    assert not isinstance(Messages.__dict__["create"], wrapt.FunctionWrapper)
    assert not isinstance(base_client.start_api_call_span, wrapt.FunctionWrapper)
    with provtrace.decision("ask", trigger="t", actor="agent"):
        create(model_server, "not recorded")
    assert recorded.steps(c.STEP_LLM_CALL) == []
    AnthropicInstrumentor().instrument()


@pytest.mark.parametrize("mode", c.CAPTURE_MODES)
def test_a_fetched_secret_in_the_prompt_is_never_recorded(
    mode: str, tmp_path: Path, model_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    from provtrace_instrumentation_anthropic import AnthropicInstrumentor

    secret = "fwtok-" + secrets.token_urlsafe(18)
    own = {"traces": {"content_mode": "content"}}  # the SDK's own content capture, on
    recorded = make_recorded(tmp_path / "provtrace", capture_content=mode)
    with instrumented(AnthropicInstrumentor()):
        with provtrace.decision("leak", trigger="t", actor="agent", nhi="svc"):
            with provtrace.secret_fetch(store="vault", ref="kv/fw", nhi="svc") as fetch:
                token = fetch.record_value(secret)
            request: dict[str, Any] = {
                "model": MODEL,
                "max_tokens": 64,
                "system": f"the token is {token}",
                "messages": [{"role": "user", "content": f"use {token}"}],
            }
            client(model_server, open_telemetry=own).messages.create(**request)
            with client(model_server, open_telemetry=own).messages.stream(**request) as managed:
                managed.until_done()
        steps = recorded.steps(c.STEP_LLM_CALL)
        assert len(steps) == 2
        if mode != c.CAPTURE_NONE:
            assert attrs(steps[1])[c.CONTENT_KEYED] == (c.INPUT_SHA256, c.OUTPUT_SHA256)
        assert_never_recorded(secret, recorded, caplog.text)
        assert recorded.handle.counters["segments_quarantined"] == 0

"""Chat completions through the real ``openai`` client against the local model server."""

from __future__ import annotations

import asyncio
import gc
import json
import secrets
from pathlib import Path
from typing import Any

import openai
import pytest
import wrapt
from opentelemetry.trace import SpanKind

import provtrace
from provtrace import conventions as c
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

MODEL = "fake-gpt"
TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("lookup_rule", "open_rule")
]


def client(model_server: Server, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=model_server.url + "/v1", api_key="test-key", **{"max_retries": 0, **options}
    )


def async_client(model_server: Server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=model_server.url + "/v1", api_key="test-key", max_retries=0)


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def genai_input(text: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": text}]},
    ]


def answer(text: str, finish: str = "stop") -> list[dict[str, Any]]:
    return [{"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": finish}]


def only_step(recorded: Recorded) -> Any:
    steps = recorded.steps(c.STEP_LLM_CALL)
    assert len(steps) == 1, [s.name for s in recorded.spans()]
    return steps[0]


def test_a_plain_call_is_one_llm_call_with_the_conventions_attributes_and_exact_digests(
    recorded: Recorded, model_server: Server
) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"):
        completion = client(model_server).chat.completions.create(
            model=MODEL, messages=ask("hello there"), temperature=0.5, max_tokens=64, seed=7, stop=["END"]
        )
    assert completion.choices[0].message.content == "echo: hello there"
    step = only_step(recorded)
    a = attrs(step)
    assert step.name == f"chat {MODEL}"
    assert step.kind is SpanKind.CLIENT
    assert a[c.GEN_AI_OPERATION_NAME] == "chat"
    assert a[c.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[c.GEN_AI_REQUEST_MODEL] == MODEL
    assert a[c.GEN_AI_REQUEST_TEMPERATURE] == 0.5
    assert a[c.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert a[c.GEN_AI_REQUEST_SEED] == 7
    assert a[c.GEN_AI_REQUEST_STOP_SEQUENCES] == ("END",)
    assert a[c.SERVER_ADDRESS] == "127.0.0.1"
    assert a[c.SERVER_PORT] == model_server.port
    assert a[c.GEN_AI_RESPONSE_MODEL] == MODEL
    assert a[c.GEN_AI_RESPONSE_ID] == completion.id
    assert a[c.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[c.GEN_AI_USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens  # type: ignore[union-attr]
    assert a[c.GEN_AI_USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens  # type: ignore[union-attr]
    assert a[c.INPUT_SHA256] == provtrace.digest(genai_input("hello there"))
    assert a[c.OUTPUT_SHA256] == provtrace.digest(answer("echo: hello there"))
    assert content(step, c.GEN_AI_INPUT_MESSAGES) == genai_input("hello there")
    assert content(step, c.GEN_AI_OUTPUT_MESSAGES) == answer("echo: hello there")
    assert c.GEN_AI_REQUEST_STREAM not in a


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_streamed_text_reaches_the_caller_unchanged_and_digests_like_the_unstreamed_answer(
    recorded: Recorded, model_server: Server, kind: str
) -> None:
    prompt = "stream me a few words please"

    async def streamed_async() -> list[Any]:
        stream = await async_client(model_server).chat.completions.create(
            model=MODEL, messages=ask(prompt), stream=True, stream_options={"include_usage": True}
        )
        return [chunk async for chunk in stream]

    with provtrace.decision("ask", trigger="t", actor="agent"):
        plain = client(model_server).chat.completions.create(model=MODEL, messages=ask(prompt))
        if kind == "sync":
            stream = client(model_server).chat.completions.create(
                model=MODEL, messages=ask(prompt), stream=True, stream_options={"include_usage": True}
            )
            chunks = list(stream)
        else:
            chunks = asyncio.run(streamed_async())
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == plain.choices[0].message.content == f"echo: {prompt}"
    unstreamed, streamed = recorded.steps(c.STEP_LLM_CALL)
    assert attrs(streamed)[c.GEN_AI_REQUEST_STREAM] is True
    assert attrs(streamed)[c.OUTPUT_SHA256] == attrs(unstreamed)[c.OUTPUT_SHA256]
    assert attrs(streamed)[c.OUTPUT_SHA256] == provtrace.digest(answer(text))
    assert attrs(streamed)[c.GEN_AI_USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens
    assert c.OUTPUT_PARTIAL not in attrs(streamed)


def test_a_stream_closed_early_ends_the_step_with_what_arrived(
    recorded: Recorded, model_server: Server
) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"):
        stream = client(model_server).chat.completions.create(
            model=MODEL, messages=ask("one two three"), stream=True
        )
        first, second = next(stream), next(stream)
        assert recorded.steps(c.STEP_LLM_CALL) == []  # the step covers the stream while it is open
        stream.close()
    step = only_step(recorded)
    seen = (first.choices[0].delta.content or "") + (second.choices[0].delta.content or "")
    assert attrs(step)[c.OUTPUT_PARTIAL] is True
    assert content(step, c.GEN_AI_OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": seen}]}
    ]


def test_a_stream_left_by_a_with_block_or_dropped_ends_its_step(
    recorded: Recorded, model_server: Server
) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"):
        with client(model_server).chat.completions.create(
            model=MODEL, messages=ask("in a block"), stream=True
        ) as stream:
            for _ in stream:
                break
        assert len(recorded.steps(c.STEP_LLM_CALL)) == 1
        dropped = client(model_server).chat.completions.create(
            model=MODEL, messages=ask("dropped"), stream=True
        )
        next(dropped)
        del dropped
        gc.collect()
        assert len(recorded.steps(c.STEP_LLM_CALL)) == 2
    assert all(attrs(step)[c.OUTPUT_PARTIAL] is True for step in recorded.steps(c.STEP_LLM_CALL))


def test_tool_calls_in_the_answer_link_exactly_the_steps_that_carry_them_out(
    recorded: Recorded, model_server: Server
) -> None:
    change = {"sg": "sg-123", "port": 443}
    prompt = f'call:lookup_rule {{"sg": "sg-123"}}\ncall:open_rule {json.dumps(change)}'
    with provtrace.decision("contain", trigger="t", actor="agent", nhi="svc"):
        completion = client(model_server).chat.completions.create(
            model=MODEL, messages=ask(prompt), tools=TOOLS
        )
        lookup_call, _ = completion.choices[0].message.tool_calls  # type: ignore[misc]
        with provtrace.tool_call("lookup_rule", call_id=lookup_call.id) as lookup:
            lookup.record_input(json.loads(lookup_call.function.arguments))  # type: ignore[union-attr]
            lookup.record_output({"rules": []})
        with provtrace.tool_call("lookup_rule") as unproposed:
            unproposed.record_input({"sg": "sg-999"})
            unproposed.record_output({"rules": []})
        with provtrace.policy_check("fw-change", input=change) as policy:
            policy.allow(reason="ok")
        with provtrace.action("firewall.rule.open", target="sg-123", params=change) as act:
            act.record_change(before={}, after=change)
    step = only_step(recorded)
    assert attrs(step)[c.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    proposals = content(step, c.GEN_AI_OUTPUT_MESSAGES)[0]["parts"]
    assert proposals == [
        {"type": "tool_call", "id": "call_1", "name": "lookup_rule", "arguments": {"sg": "sg-123"}},
        {"type": "tool_call", "id": "call_2", "name": "open_rule", "arguments": change},
    ]
    llm_id = step.context.span_id
    tools = [s for s in recorded.spans() if s.name == "execute_tool lookup_rule"]
    assert [triggered_by(s) for s in tools] == [[(llm_id, "call_1")], []]
    assert triggered_by(recorded.span("policy_check fw-change")) == []
    assert triggered_by(recorded.span("action firewall.rule.open")) == [(llm_id, "call_2")]


def test_an_error_answer_ends_the_step_as_an_error(recorded: Recorded, model_server: Server) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"), pytest.raises(openai.BadRequestError):
        client(model_server).chat.completions.create(model=MODEL, messages=ask("error:400"))
    step = only_step(recorded)
    assert step.status.status_code.name == "ERROR"
    assert attrs(step)[c.ERROR_TYPE] == "BadRequestError"
    assert attrs(step)[c.INPUT_SHA256] == provtrace.digest(genai_input("error:400"))
    assert c.OUTPUT_SHA256 not in attrs(step)


def test_rate_limit_retries_after_retry_after_are_one_step(recorded: Recorded, model_server: Server) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"):
        completion = client(model_server, max_retries=2).chat.completions.create(
            model=MODEL, messages=ask("ratelimit:2")
        )
    assert completion.choices[0].message.content == "echo: ratelimit:2"
    assert len(model_server.requests) == 3  # two 429s with Retry-After, then the answer
    step = only_step(recorded)
    assert step.status.status_code.name == "UNSET"
    assert attrs(step)[c.OUTPUT_SHA256] == provtrace.digest(answer("echo: ratelimit:2"))


def test_a_timeout_ends_the_step_as_an_error(recorded: Recorded, model_server: Server) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"), pytest.raises(openai.APITimeoutError):
        client(model_server, timeout=0.2).chat.completions.create(model=MODEL, messages=ask("hold"))
    step = only_step(recorded)
    assert attrs(step)[c.ERROR_TYPE] == "APITimeoutError"
    assert c.OUTPUT_SHA256 not in attrs(step)


def test_with_raw_response_keeps_the_headers_and_records_the_same_answer(
    recorded: Recorded, model_server: Server
) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"):
        raw = client(model_server).chat.completions.with_raw_response.create(model=MODEL, messages=ask("raw"))
        assert raw.headers["x-request-id"].startswith("req_")
        assert raw.parse().choices[0].message.content == "echo: raw"
        raw_stream = client(model_server).chat.completions.with_raw_response.create(
            model=MODEL, messages=ask("raw"), stream=True
        )
        assert raw_stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(ch.choices[0].delta.content or "" for ch in raw_stream.parse() if ch.choices)
    assert text == "echo: raw"
    plain, streamed = recorded.steps(c.STEP_LLM_CALL)
    assert (
        attrs(plain)[c.OUTPUT_SHA256]
        == attrs(streamed)[c.OUTPUT_SHA256]
        == provtrace.digest(answer("echo: raw"))
    )


def test_async_calls_are_steps_too(recorded: Recorded, model_server: Server) -> None:
    async def run() -> str:
        completion = await async_client(model_server).chat.completions.create(
            model=MODEL, messages=ask("async")
        )
        return str(completion.choices[0].message.content)

    with provtrace.decision("ask", trigger="t", actor="agent"):
        assert asyncio.run(run()) == "echo: async"
    assert attrs(only_step(recorded))[c.OUTPUT_SHA256] == provtrace.digest(answer("echo: async"))


def test_uninstrument_restores_the_client(recorded: Recorded, model_server: Server) -> None:
    from openai.resources.chat.completions.completions import Completions
    from provtrace_instrumentation_openai import OpenAIInstrumentor

    OpenAIInstrumentor().uninstrument()
    assert not isinstance(Completions.__dict__["create"], wrapt.FunctionWrapper)
    with provtrace.decision("ask", trigger="t", actor="agent"):
        client(model_server).chat.completions.create(model=MODEL, messages=ask("not recorded"))
    assert recorded.steps(c.STEP_LLM_CALL) == []
    OpenAIInstrumentor().instrument()


def test_a_call_inside_a_hand_made_llm_call_is_not_recorded_twice(
    recorded: Recorded, model_server: Server
) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"):
        with provtrace.llm_call(model=MODEL, provider="openai") as llm:
            llm.record_input(ask("by hand"))
            completion = client(model_server).chat.completions.create(model=MODEL, messages=ask("by hand"))
            llm.record_output(completion)
    assert len(recorded.steps(c.STEP_LLM_CALL)) == 1


@pytest.mark.parametrize("mode", c.CAPTURE_MODES)
def test_a_fetched_secret_in_the_prompt_is_never_recorded(
    mode: str, tmp_path: Path, model_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    from provtrace_instrumentation_openai import OpenAIInstrumentor

    secret = "fwtok-" + secrets.token_urlsafe(18)
    recorded = make_recorded(tmp_path / "provtrace", capture_content=mode)
    with instrumented(OpenAIInstrumentor()):
        with provtrace.decision("leak", trigger="t", actor="agent", nhi="svc"):
            with provtrace.secret_fetch(store="vault", ref="kv/fw", nhi="svc") as fetch:
                token = fetch.record_value(secret)
            prompt = f"open the rule with token {token}"  # the server echoes it back
            client(model_server).chat.completions.create(model=MODEL, messages=ask(prompt))
            list(client(model_server).chat.completions.create(model=MODEL, messages=ask(prompt), stream=True))
        steps = recorded.steps(c.STEP_LLM_CALL)
        assert len(steps) == 2
        if mode != c.CAPTURE_NONE:
            assert attrs(steps[0])[c.CONTENT_KEYED] == (c.INPUT_SHA256, c.OUTPUT_SHA256)
            assert attrs(steps[0])[c.OUTPUT_SHA256] == attrs(steps[1])[c.OUTPUT_SHA256]
        if mode in (c.CAPTURE_REDACTED, c.CAPTURE_FULL):
            assert "[REDACTED:secret]" in attrs(steps[1])[c.GEN_AI_OUTPUT_MESSAGES]
        assert_never_recorded(secret, recorded, caplog.text)
        assert recorded.handle.counters["segments_quarantined"] == 0

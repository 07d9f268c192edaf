"""The Responses API through the real ``openai`` client against the local model server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai

import provtrace
from provtrace import conventions as c
from provtrace.testing import Recorded, attrs, content, triggered_by
from provtrace.testing.llm_server import Server

MODEL = "fake-gpt"
TOOLS = [{"type": "function", "name": "lookup_rule", "parameters": {"type": "object"}}]
INPUT = [
    {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
    {"role": "user", "parts": [{"type": "text", "content": "hi there"}]},
]


def client(model_server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=model_server.url + "/v1", api_key="test-key", max_retries=0)


def answer(text: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}]


def test_instructions_and_input_are_the_input_and_the_output_items_the_output(
    recorded: Recorded, model_server: Server
) -> None:
    with provtrace.decision("ask", trigger="t", actor="agent"):
        response = client(model_server).responses.create(
            model=MODEL, instructions="Be brief.", input="hi there"
        )
    assert response.output_text == "echo: hi there"
    (step,) = recorded.steps(c.STEP_LLM_CALL)
    a = attrs(step)
    assert a[c.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[c.GEN_AI_RESPONSE_ID] == response.id
    assert a[c.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[c.GEN_AI_USAGE_INPUT_TOKENS] == response.usage.input_tokens  # type: ignore[union-attr]
    assert a[c.INPUT_SHA256] == provtrace.digest(INPUT)
    assert content(step, c.GEN_AI_OUTPUT_MESSAGES) == answer("echo: hi there")


def test_a_streamed_response_digests_like_the_unstreamed_one(
    recorded: Recorded, model_server: Server
) -> None:
    async def streamed_async() -> str:
        aclient = openai.AsyncOpenAI(base_url=model_server.url + "/v1", api_key="k", max_retries=0)
        stream = await aclient.responses.create(
            model=MODEL, instructions="Be brief.", input="hi there", stream=True
        )
        return "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])

    with provtrace.decision("ask", trigger="t", actor="agent"):
        client(model_server).responses.create(model=MODEL, instructions="Be brief.", input="hi there")
        events = list(
            client(model_server).responses.create(
                model=MODEL, instructions="Be brief.", input="hi there", stream=True
            )
        )
        async_text = asyncio.run(streamed_async())
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == async_text == "echo: hi there"
    digests = {attrs(step)[c.OUTPUT_SHA256] for step in recorded.steps(c.STEP_LLM_CALL)}
    assert digests == {provtrace.digest(answer(text))}


def test_a_function_call_is_a_proposal_and_its_output_a_tool_response(
    recorded: Recorded, model_server: Server
) -> None:
    with provtrace.decision("contain", trigger="t", actor="agent"):
        response = client(model_server).responses.create(
            model=MODEL, input='call:lookup_rule {"sg": "sg-1"}', tools=TOOLS
        )
        (call,) = [item for item in response.output if item.type == "function_call"]
        with provtrace.tool_call("lookup_rule", call_id=call.call_id) as tool:  # type: ignore[union-attr]
            tool.record_input(json.loads(call.arguments))  # type: ignore[union-attr]
            tool.record_output({"rules": []})
        follow_up = [
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": "lookup_rule",
                "arguments": call.arguments,
            },  # type: ignore[union-attr]
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"rules": []}'},  # type: ignore[union-attr]
        ]
        client(model_server).responses.create(model=MODEL, input=follow_up, tools=TOOLS)
    first, second = recorded.steps(c.STEP_LLM_CALL)
    assert content(first, c.GEN_AI_OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "call_1", "name": "lookup_rule", "arguments": {"sg": "sg-1"}}
            ],
            "finish_reason": "tool_call",
        }
    ]
    assert triggered_by(recorded.span("execute_tool lookup_rule")) == [(first.context.span_id, "call_1")]
    assert content(second, c.GEN_AI_INPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "call_1", "name": "lookup_rule", "arguments": {"sg": "sg-1"}}
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "call_1", "response": '{"rules": []}'}],
        },
    ]

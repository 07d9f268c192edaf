"""Chat Completions (``client.chat.completions.create``): the request, the answer, a streamed answer.

The step's input is ``messages`` in the GenAI shape; its output is one assistant message per
choice (text, refusal, tool calls with their arguments parsed) with the choice's finish reason.
A streamed answer is assembled into the completion the same call returns unstreamed, and read by
the same code, so both digest alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provtrace import genai
from provtrace.instrumentation import JsonValue, to_jsonable

PROVIDER = "openai"


def output_type(response_format: Any) -> str | None:
    """``gen_ai.output.type`` from ``response_format`` (a mapping, or a model class for parse)."""
    if isinstance(response_format, type):
        return "json"
    kind = response_format.get("type") if isinstance(response_format, Mapping) else response_format
    if kind in ("json_object", "json_schema"):
        return "json"
    return kind if isinstance(kind, str) else None


def describe(resource: Any, kwargs: Mapping[str, Any]) -> genai.Request:
    address, port = genai.server_of(resource)
    stop = genai.argument(kwargs, "stop")
    return genai.Request(
        provider=PROVIDER,
        model=genai.argument(kwargs, "model"),
        messages=genai.chat_messages(genai.argument(kwargs, "messages") or []),
        stream=bool(genai.argument(kwargs, "stream")),
        temperature=genai.argument(kwargs, "temperature"),
        top_p=genai.argument(kwargs, "top_p"),
        max_tokens=genai.argument(kwargs, "max_completion_tokens", "max_tokens"),
        stop_sequences=[stop] if isinstance(stop, str) else stop,
        seed=genai.argument(kwargs, "seed"),
        frequency_penalty=genai.argument(kwargs, "frequency_penalty"),
        presence_penalty=genai.argument(kwargs, "presence_penalty"),
        choice_count=genai.argument(kwargs, "n"),
        output_type=output_type(genai.argument(kwargs, "response_format")),
        server_address=address,
        server_port=port,
    )


def response_of(completion: JsonValue) -> genai.Response:
    """A chat completion (as JSON data) read as the step's answer."""
    data = completion if isinstance(completion, dict) else {}
    choices = [ch for ch in data.get("choices") or [] if isinstance(ch, dict)]
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    assert isinstance(usage, dict)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return genai.Response(
        messages=[
            genai.chat_message(
                ch.get("message") or {"role": "assistant"},
                finish_reason=genai.finish_reason(ch.get("finish_reason")),
            )
            for ch in choices
        ],
        model=data.get("model"),
        response_id=data.get("id"),
        finish_reasons=[str(ch["finish_reason"]) for ch in choices if ch.get("finish_reason")],
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        cache_read_input_tokens=prompt_details.get("cached_tokens"),
        reasoning_output_tokens=completion_details.get("reasoning_tokens"),
    )


class _Choice:
    def __init__(self) -> None:
        self.role = "assistant"
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None

    def add(self, delta: Mapping[str, Any]) -> None:
        if isinstance(delta.get("role"), str):
            self.role = delta["role"]
        if isinstance(delta.get("content"), str):
            self.text.append(delta["content"])
        if isinstance(delta.get("refusal"), str):
            self.refusal.append(delta["refusal"])
        for call in delta.get("tool_calls") or []:
            slot = self.tool_calls.setdefault(int(call.get("index", 0)), {"name": "", "arguments": []})
            if call.get("id"):
                slot["id"] = call["id"]
            function = call.get("function") or {}
            if function.get("name"):
                slot["name"] = function["name"]
            if isinstance(function.get("arguments"), str):
                slot["arguments"].append(function["arguments"])

    def message(self) -> dict[str, Any]:
        """The message the unstreamed call returns (empty text is absent, as it is there)."""
        message: dict[str, Any] = {"role": self.role}
        if "".join(self.text):
            message["content"] = "".join(self.text)
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": slot.get("id"),
                    "type": "function",
                    "function": {"name": slot["name"], "arguments": "".join(slot["arguments"])},
                }
                for _, slot in sorted(self.tool_calls.items())
            ]
        return message


class ChunkAssembler:
    """Builds the chat completion from its chunks."""

    def __init__(self) -> None:
        self.completion: dict[str, Any] = {}
        self.choices: dict[int, _Choice] = {}

    def add(self, chunk: Any) -> None:
        data = to_jsonable(chunk)
        if not isinstance(data, dict):
            return
        for key in ("id", "model", "usage"):
            if data.get(key) is not None:
                self.completion[key] = data[key]
        for choice in data.get("choices") or []:
            slot = self.choices.setdefault(int(choice.get("index", 0)), _Choice())
            slot.add(choice.get("delta") or {})
            if choice.get("finish_reason"):
                slot.finish_reason = choice["finish_reason"]

    def response(self) -> genai.Response:
        choices = []
        for index, choice in sorted(self.choices.items()):
            entry: dict[str, Any] = {"index": index, "message": choice.message()}
            if choice.finish_reason:
                entry["finish_reason"] = choice.finish_reason
            choices.append(entry)
        return response_of({**self.completion, "choices": choices})


class ChatAnswers:
    def response(self, result: Any) -> genai.Response:
        return response_of(to_jsonable(result))

    def assembler(self) -> genai.Assembler:
        return ChunkAssembler()

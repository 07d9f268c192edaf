"""Messages (``client.messages.create`` and ``client.messages.stream``): request, answer, stream.

The step's input is ``messages`` in the GenAI shape after ``system`` as a ``system`` message
(``tool_use`` blocks are tool calls, ``tool_result`` blocks tool responses); its output is the
assistant message with its content blocks as parts and the stop reason as finish reason. A
streamed answer is assembled from its events into the message the unstreamed call returns, and
read by the same code, so both digest alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provtrace import genai
from provtrace.instrumentation import JsonValue, to_jsonable

PROVIDER = "anthropic"

FINISH_REASONS = {
    "end_turn": genai.FINISH_STOP,
    "stop_sequence": genai.FINISH_STOP,
    "max_tokens": genai.FINISH_LENGTH,
    "tool_use": genai.FINISH_TOOL_CALL,
    "refusal": genai.FINISH_CONTENT_FILTER,
}


def describe(resource: Any, kwargs: Mapping[str, Any], *, stream: bool | None = None) -> genai.Request:
    address, port = genai.server_of(resource)
    return genai.Request(
        provider=PROVIDER,
        model=genai.argument(kwargs, "model"),
        messages=genai.chat_messages(
            genai.argument(kwargs, "messages") or [], instructions=genai.argument(kwargs, "system")
        ),
        stream=bool(genai.argument(kwargs, "stream")) if stream is None else stream,
        max_tokens=genai.argument(kwargs, "max_tokens"),
        stop_sequences=genai.argument(kwargs, "stop_sequences"),
        server_address=address,
        server_port=port,
    )


def describe_stream(resource: Any, kwargs: Mapping[str, Any]) -> genai.Request:
    """``messages.stream(...)`` always streams."""
    return describe(resource, kwargs, stream=True)


def _integer(value: JsonValue) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def response_of(message: JsonValue) -> genai.Response:
    """A message (as JSON data) read as the step's answer."""
    data = message if isinstance(message, dict) else {}
    stop = data.get("stop_reason")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    assert isinstance(usage, dict)
    cache_read, cache_creation = (
        usage.get("cache_read_input_tokens"),
        usage.get("cache_creation_input_tokens"),
    )
    uncached = usage.get("input_tokens")
    return genai.Response(
        messages=[
            genai.chat_message(
                {"role": data.get("role") or genai.ROLE_ASSISTANT, "content": data.get("content") or []},
                finish_reason=FINISH_REASONS.get(stop, stop) if isinstance(stop, str) else None,
            )
        ],
        model=data.get("model"),
        response_id=data.get("id"),
        finish_reasons=[stop] if isinstance(stop, str) else [],
        # Anthropic counts cached input apart; the conventions count it as input.
        input_tokens=None
        if uncached is None
        else _integer(uncached) + _integer(cache_read) + _integer(cache_creation),
        output_tokens=usage.get("output_tokens"),
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_creation,
        partial=not isinstance(stop, str),
    )


class EventAssembler:
    """Builds the message from its stream events (``message_start``, ``content_block_*``,
    ``message_delta``)."""

    def __init__(self) -> None:
        self.message: dict[str, Any] = {}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.json: dict[int, list[str]] = {}

    def add(self, event: Any) -> None:
        data = to_jsonable(event)
        if not isinstance(data, dict):
            return
        kind, index = data.get("type"), int(data.get("index", 0) or 0)
        if kind == "message_start" and isinstance(data.get("message"), dict):
            self.message = dict(data["message"])
        elif kind == "content_block_start" and isinstance(data.get("content_block"), dict):
            self.blocks[index] = dict(data["content_block"])
        elif kind == "content_block_delta":
            self._delta(index, data.get("delta") or {})
        elif kind == "message_delta":
            self.message.update(data.get("delta") or {})
            usage = {**(self.message.get("usage") or {}), **(data.get("usage") or {})}
            self.message["usage"] = {key: value for key, value in usage.items() if value is not None}

    def _delta(self, index: int, delta: Mapping[str, Any]) -> None:
        block = self.blocks.setdefault(index, {"type": "text", "text": ""})
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = block.get("text", "") + str(delta.get("text", ""))
        elif kind == "input_json_delta":
            self.json.setdefault(index, []).append(str(delta.get("partial_json", "")))
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + str(delta.get("thinking", ""))
        elif kind == "signature_delta":
            block["signature"] = str(delta.get("signature", ""))

    def response(self) -> genai.Response:
        content = []
        for index, block in sorted(self.blocks.items()):
            if index in self.json:
                text = "".join(self.json[index])
                block = {**block, "input": genai.arguments_of(text) if text else {}}  # noqa: PLW2901
            content.append(block)
        return response_of({**self.message, "content": content})


class MessagesAnswers:
    def response(self, result: Any) -> genai.Response:
        return response_of(to_jsonable(result))

    def assembler(self) -> genai.Assembler:
        return EventAssembler()


def final_message(stream: Any) -> genai.Response | None:
    """The answer a ``messages.stream()`` block saw: the message its stream assembled (None when
    no event arrived)."""
    try:
        snapshot = stream.current_message_snapshot
    except (AssertionError, AttributeError):  # no message_start arrived
        return None
    return response_of(to_jsonable(snapshot))

"""Responses (``client.responses.create``): the request, the answer, a streamed answer.

The step's input is ``input`` in the GenAI shape, after ``instructions`` as a ``system`` message;
input items become messages (``function_call`` an assistant tool call, ``function_call_output`` a
tool response). Its output is one assistant message holding every output item in order: text,
refusals, tool calls (``call_id`` as the id, so a tool run for it is linked to the proposal),
reasoning summaries, and any other item as a part of its own type. A streamed answer is read from
the ``response.completed`` event's response, the object the unstreamed call returns; a stream
that ends before it is assembled from the items and deltas that arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provtrace import genai
from provtrace.instrumentation import JsonValue, to_jsonable
from provtrace_instrumentation_openai.chat import PROVIDER

_FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")
_INCOMPLETE = {"max_output_tokens": genai.FINISH_LENGTH, "content_filter": genai.FINISH_CONTENT_FILTER}


def describe(resource: Any, kwargs: Mapping[str, Any]) -> genai.Request:
    address, port = genai.server_of(resource)
    text = genai.argument(kwargs, "text")
    text_format = text.get("format") if isinstance(text, Mapping) else None
    return genai.Request(
        provider=PROVIDER,
        model=genai.argument(kwargs, "model"),
        messages=input_messages(genai.argument(kwargs, "input"), genai.argument(kwargs, "instructions")),
        stream=bool(genai.argument(kwargs, "stream")),
        temperature=genai.argument(kwargs, "temperature"),
        top_p=genai.argument(kwargs, "top_p"),
        max_tokens=genai.argument(kwargs, "max_output_tokens"),
        output_type="json"
        if isinstance(text_format, Mapping) and text_format.get("type") == "json_schema"
        else None,
        server_address=address,
        server_port=port,
    )


def input_messages(items: Any, instructions: Any) -> list[genai.Message]:
    leading = genai.system_message(instructions) if instructions is not None else None
    messages = [leading] if leading is not None else []
    data = to_jsonable(items)
    if isinstance(data, str):
        return [*messages, genai.message(genai.ROLE_USER, [genai.text(data)])]
    for item in data if isinstance(data, list) else [data] if data is not None else []:
        messages.append(_input_item(item))
    return messages


def _input_item(item: JsonValue) -> genai.Message:
    if not isinstance(item, dict):
        return genai.chat_message(item)
    kind = item.get("type")
    if kind == "function_call":
        return genai.message(genai.ROLE_ASSISTANT, [_tool_call(item)])
    if kind == "function_call_output":
        return genai.message(
            genai.ROLE_TOOL, [genai.tool_call_response(item.get("call_id"), item.get("output"))]
        )
    if kind in (None, "message") and isinstance(item.get("role"), str):
        return genai.chat_message({key: value for key, value in item.items() if key != "type"})
    return genai.message(str(item.get("role") or genai.ROLE_ASSISTANT), [genai.block_part(item)])


def _tool_call(item: Mapping[str, JsonValue]) -> genai.Part:
    call_id = item.get("call_id") or item.get("id")
    return genai.tool_call(
        str(call_id) if call_id else None, str(item.get("name") or ""), item.get("arguments", {})
    )


def _output_parts(item: JsonValue) -> list[genai.Part]:
    if not isinstance(item, dict):
        return [genai.block_part(item)]
    kind = item.get("type")
    if kind == "message":
        return genai.content_parts(item.get("content"))
    if kind == "function_call":
        return [_tool_call(item)]
    if kind == "reasoning":
        summary = item.get("summary") or []
        texts = [s.get("text", "") for s in summary if isinstance(s, dict)]
        return [genai.reasoning("".join(texts))] if texts else [genai.block_part(item)]
    return [genai.block_part(item)]


def finish_reason(response: Mapping[str, JsonValue]) -> str | None:
    status = response.get("status")
    if status == "completed":
        output = response.get("output") or []
        calls = any(isinstance(i, dict) and i.get("type") == "function_call" for i in output)
        return genai.FINISH_TOOL_CALL if calls else genai.FINISH_STOP
    if status == "incomplete":
        details = response.get("incomplete_details") or {}
        reason = details.get("reason") if isinstance(details, dict) else None
        return _INCOMPLETE.get(str(reason), str(reason) if reason else genai.FINISH_LENGTH)
    if status == "failed":
        return genai.FINISH_ERROR
    return None


def response_of(response: JsonValue) -> genai.Response:
    """A response (as JSON data) read as the step's answer."""
    data = response if isinstance(response, dict) else {}
    parts = [part for item in data.get("output") or [] for part in _output_parts(item)]
    reason = finish_reason(data)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    assert isinstance(usage, dict)
    return genai.Response(
        messages=[genai.message(genai.ROLE_ASSISTANT, parts, finish_reason=reason)],
        model=data.get("model"),
        response_id=data.get("id"),
        finish_reasons=[reason] if reason else [],
        input_tokens=usage.get("input_tokens"),
        output_tokens=usage.get("output_tokens"),
        cache_read_input_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens"),
        reasoning_output_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
    )


class EventAssembler:
    """Keeps the final response of a stream, or what arrived of one that ended before it."""

    def __init__(self) -> None:
        self.snapshot: dict[str, Any] = {}
        self.final: dict[str, Any] | None = None
        self.items: dict[int, dict[str, Any]] = {}
        self.texts: dict[tuple[int, int], list[str]] = {}
        self.arguments: dict[int, list[str]] = {}

    def add(self, event: Any) -> None:
        data = to_jsonable(event)
        if not isinstance(data, dict):
            return
        kind = data.get("type")
        index = int(data.get("output_index", 0) or 0)
        if kind in _FINAL_EVENTS and isinstance(data.get("response"), dict):
            self.final = data["response"]
        elif isinstance(data.get("response"), dict):
            self.snapshot = data["response"]
        elif kind in ("response.output_item.added", "response.output_item.done") and isinstance(
            data.get("item"), dict
        ):
            self.items[index] = data["item"]
            if kind == "response.output_item.done":
                self.arguments.pop(index, None)
                for key in [k for k in self.texts if k[0] == index]:
                    del self.texts[key]
        elif kind == "response.output_text.delta":
            self.texts.setdefault((index, int(data.get("content_index", 0) or 0)), []).append(
                str(data.get("delta", ""))
            )
        elif kind == "response.function_call_arguments.delta":
            self.arguments.setdefault(index, []).append(str(data.get("delta", "")))

    def response(self) -> genai.Response:
        if self.final is not None:
            return response_of(self.final)
        items = []
        for index, arrived in sorted(self.items.items()):
            item = dict(arrived)
            if index in self.arguments:
                item["arguments"] = "".join(self.arguments[index])
            texts = sorted((k[1], "".join(v)) for k, v in self.texts.items() if k[0] == index)
            if texts:
                item["content"] = [{"type": "output_text", "text": text} for _, text in texts]
            items.append(item)
        return response_of({**self.snapshot, "status": "in_progress", "output": items})


class ResponsesAnswers:
    def response(self, result: Any) -> genai.Response:
        return response_of(to_jsonable(result))

    def assembler(self) -> genai.Assembler:
        return EventAssembler()

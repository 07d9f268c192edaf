"""The OpenTelemetry GenAI message shape, and chat messages of any common client turned into it.

``gen_ai.input.messages`` and ``gen_ai.output.messages`` hold ``[{"role", "parts": [...]}]``
(output messages add ``finish_reason``); a part is ``{"type": "text", "content"}``,
``{"type": "tool_call", "id", "name", "arguments"}``, ``{"type": "tool_call_response", "id",
"response"}``, ``{"type": "reasoning", "content"}``, ``{"type": "uri" | "blob" | "file", ...}``, or
any other ``type`` with its own fields. :func:`chat_messages` reads the shapes the OpenAI Chat
Completions and Anthropic Messages APIs use (and the GenAI shape itself), so every instrumentation
and the ``llm_call`` decorator record the same conversation the same way. Nothing is dropped: a
block no rule knows is kept as a part of its own type with its fields, so the input digest covers
everything the model was sent.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence

from provtrace.content import JsonValue, to_jsonable

Part = dict[str, JsonValue]
Message = dict[str, JsonValue]

ROLE_SYSTEM = "system"
ROLE_USER = "user"
ROLE_ASSISTANT = "assistant"
ROLE_TOOL = "tool"

# The finish reasons the conventions name; instrumentations map their provider's onto these.
FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_CONTENT_FILTER = "content_filter"
FINISH_TOOL_CALL = "tool_call"
FINISH_ERROR = "error"
# OpenAI-style finish reasons that the conventions name differently.
_FINISH_ALIASES = {"tool_calls": FINISH_TOOL_CALL, "function_call": FINISH_TOOL_CALL}


def finish_reason(reason: object) -> str | None:
    """A chat completion's finish reason as the conventions name it (``tool_calls`` is
    ``tool_call``); None when there is none."""
    return _FINISH_ALIASES.get(reason, reason) if isinstance(reason, str) and reason else None


def text(content: str) -> Part:
    return {"type": "text", "content": content}


def reasoning(content: str) -> Part:
    return {"type": "reasoning", "content": content}


def tool_call(call_id: str | None, name: str, arguments: JsonValue) -> Part:
    """A tool call the model asked for; arguments given as JSON text are parsed (see
    :func:`arguments_of`)."""
    part: Part = {"type": "tool_call", "name": name, "arguments": arguments_of(arguments)}
    if call_id:
        part["id"] = call_id
    return part


def tool_call_response(call_id: str | None, response: JsonValue) -> Part:
    part: Part = {"type": "tool_call_response", "response": to_jsonable(response)}
    if call_id:
        part["id"] = call_id
    return part


def message(
    role: str, parts: Sequence[Part], *, finish_reason: str | None = None, name: str | None = None
) -> Message:
    result: Message = {"role": role, "parts": list(parts)}
    if name:
        result["name"] = name
    if finish_reason:
        result["finish_reason"] = finish_reason
    return result


def arguments_of(arguments: JsonValue) -> JsonValue:
    """Tool call arguments as data: JSON text (as OpenAI sends them) is parsed, the empty text is
    the empty object (what a tool called without arguments gets), anything else is kept as is."""
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        with contextlib.suppress(ValueError):
            parsed: JsonValue = json.loads(arguments)
            return parsed
    return to_jsonable(arguments)


def is_genai_messages(value: JsonValue) -> bool:
    """True for a non-empty list of ``{"role": str, "parts": list}``."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("parts"), list)
            for m in value
        )
    )


def is_chat_messages(value: JsonValue) -> bool:
    """True for a non-empty list of mappings that each have a string ``role``: chat messages in
    the GenAI shape or a client's (``content`` instead of ``parts``)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value)
    )


def system_message(instructions: JsonValue) -> Message | None:
    """Instructions given beside the messages (Anthropic's ``system``, the Responses API's
    ``instructions``) as the leading ``system`` message the model was in effect sent."""
    parts = content_parts(to_jsonable(instructions))
    return message(ROLE_SYSTEM, parts) if parts else None


def chat_messages(messages: object, *, instructions: object = None) -> list[Message]:
    """Chat messages in the GenAI shape, in the order they were sent; ``instructions`` given
    beside them come first, as a ``system`` message."""
    jsonable = to_jsonable(messages)
    items = jsonable if isinstance(jsonable, list) else [jsonable] if jsonable is not None else []
    result: list[Message] = []
    leading = system_message(instructions) if instructions is not None else None
    if leading is not None:
        result.append(leading)
    result.extend(chat_message(item) for item in items)
    return result


def chat_message(item: JsonValue, *, finish_reason: str | None = None) -> Message:
    """One chat message in the GenAI shape (an unknown item is kept whole as a generic part)."""
    if not isinstance(item, dict):
        return message(ROLE_USER, content_parts(item), finish_reason=finish_reason)
    role = str(item.get("role") or ROLE_USER)
    name = item.get("name") if isinstance(item.get("name"), str) else None
    if isinstance(item.get("parts"), list):  # already the GenAI shape
        kept: Message = dict(item)
        if finish_reason and "finish_reason" not in kept:
            kept["finish_reason"] = finish_reason
        return kept
    parts: list[Part] = []
    if role in (ROLE_TOOL, "function"):
        call_id = item.get("tool_call_id") or item.get("name")
        parts.append(tool_call_response(str(call_id) if call_id else None, item.get("content")))
        return message(ROLE_TOOL, parts, name=name, finish_reason=finish_reason)
    parts.extend(content_parts(item.get("content")))
    refusal = item.get("refusal")
    if isinstance(refusal, str):
        parts.append({"type": "refusal", "content": refusal})
    parts.extend(_openai_tool_calls(item))
    return message(role, parts, name=name, finish_reason=finish_reason)


def _openai_tool_calls(item: Mapping[str, JsonValue]) -> Iterable[Part]:
    calls = item.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else call
        assert isinstance(function, dict)
        call_id = call.get("id")
        yield tool_call(
            call_id if isinstance(call_id, str) else None,
            str(function.get("name") or ""),
            function.get("arguments", {}),
        )
    legacy = item.get("function_call")
    if isinstance(legacy, dict):
        yield tool_call(None, str(legacy.get("name") or ""), legacy.get("arguments", {}))


def content_parts(content: JsonValue) -> list[Part]:
    """Message content (a string, a block, or a list of strings and blocks) as parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text(content)]
    blocks = content if isinstance(content, list) else [content]
    return [block_part(block) for block in blocks]


def block_part(block: JsonValue) -> Part:
    """One content block as a part: text, tool use and results, reasoning and media of the
    common clients by their own names; any other block as a part of its own type."""
    if isinstance(block, str):
        return text(block)
    if not isinstance(block, dict):
        return {"type": "unknown", "content": block}
    kind = block.get("type")
    if kind in ("text", "input_text", "output_text") and isinstance(block.get("text"), str):
        return text(block["text"])
    if kind == "tool_use":  # Anthropic: the model asks for a tool
        call_id = block.get("id")
        return tool_call(
            call_id if isinstance(call_id, str) else None,
            str(block.get("name") or ""),
            block.get("input", {}),
        )
    if kind == "tool_result":  # Anthropic: the tool's answer, in a user message
        call_id = block.get("tool_use_id")
        return tool_call_response(call_id if isinstance(call_id, str) else None, block.get("content"))
    if kind in ("thinking", "reasoning") and isinstance(block.get("thinking", block.get("content")), str):
        return reasoning(str(block.get("thinking", block.get("content"))))
    if kind == "image_url":  # OpenAI chat: {"image_url": {"url": ...}}
        image = block.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return {"type": "uri", "modality": "image", "uri": url}
    generic: Part = {key: value for key, value in block.items() if key != "type"}
    generic["type"] = str(kind) if kind is not None else "unknown"
    return generic

"""``llm_call`` and ``tool_call``: what the model was asked and answered, and the tools it used."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, overload

from opentelemetry.trace import SpanKind, Status, StatusCode

from provtrace import conventions as c
from provtrace.content import REDACTOR, JsonValue, capture, to_jsonable
from provtrace.messages import (
    ROLE_ASSISTANT,
    Message,
    chat_message,
    chat_messages,
    finish_reason,
    is_chat_messages,
    message,
    text,
)
from provtrace.steps.base import Refs, StepHandle, StepSpec
from provtrace.steps.scope import DecisionState, Proposal

F = TypeVar("F", bound=Callable[..., Any])


class LlmCall(StepHandle):
    step = c.STEP_LLM_CALL
    input_attribute = c.GEN_AI_INPUT_MESSAGES
    output_attribute = c.GEN_AI_OUTPUT_MESSAGES

    def set_response(
        self,
        *,
        model: str | None = None,
        response_id: str | None = None,
        finish_reasons: Sequence[str] | None = None,
    ) -> None:
        with self.recording("response"):
            if model:
                self.span.set_attribute(c.GEN_AI_RESPONSE_MODEL, model)
            if response_id:
                self.span.set_attribute(c.GEN_AI_RESPONSE_ID, response_id)
            if finish_reasons:
                self.span.set_attribute(c.GEN_AI_RESPONSE_FINISH_REASONS, tuple(finish_reasons))

    def record_output(self, value: Any) -> str:
        """Record the model's answer; tool calls in it (GenAI ``tool_call`` parts) become
        proposals that later steps of the decision are linked to (see :meth:`propose`)."""
        recorded = super().record_output(value)
        with self.recording("proposals"):
            for name, arguments, call_id in proposed_tool_calls(to_jsonable(value)):
                self.propose(name, arguments, call_id=call_id)
        return recorded

    def propose(self, name: str, arguments: Any, *, call_id: str | None = None) -> None:
        """The model proposed calling ``name`` with ``arguments``: a later tool call of that name
        with those canonical arguments (or carrying ``call_id``), or an action whose parameters
        equal them, is linked ``triggered_by`` this call, with the tool call id on the link."""
        if self.decision is None:
            return
        with self.recording("proposal"):
            digest = capture(arguments).digest
            self.decision.propose(Proposal(self.context, call_id or "", str(name), digest))

    def set_usage(self, *, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        with self.recording("usage"):
            if input_tokens is not None:
                self.span.set_attribute(c.GEN_AI_USAGE_INPUT_TOKENS, int(input_tokens))
            if output_tokens is not None:
                self.span.set_attribute(c.GEN_AI_USAGE_OUTPUT_TOKENS, int(output_tokens))


class LlmCallSpec(StepSpec[LlmCall]):
    handle_type = LlmCall
    step = c.STEP_LLM_CALL
    kind = SpanKind.CLIENT

    def __init__(
        self,
        model: str | None = None,
        provider: str | None = None,
        *,
        operation: str = c.GEN_AI_OPERATION_CHAT,
        actor: str | None = None,
        nhi: str | None = None,
        triggered_by: Refs = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(actor=actor, nhi=nhi, triggered_by=triggered_by, attributes=attributes)
        self.model = model
        self.provider = provider
        self.operation = operation

    def span_name(self) -> str:
        return f"{self.operation} {self.model}" if self.model else self.operation

    def step_attributes(self, decision: DecisionState | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {c.GEN_AI_OPERATION_NAME: self.operation}
        if self.provider:
            attributes[c.GEN_AI_PROVIDER_NAME] = self.provider
        if self.model:
            attributes[c.GEN_AI_REQUEST_MODEL] = self.model
        return attributes

    def inferred_links(self, decision: DecisionState | None) -> list[Any]:
        # A model call is itself the proposer; it is only linked when the caller says so.
        return self._triggered_by_links(None)

    def proposal(self, decision: DecisionState) -> Proposal | None:
        return None

    def record_call_input(self, handle: LlmCall, arguments: dict[str, Any]) -> None:
        """A decorated function's input: the chat messages among its arguments, in the GenAI
        shape (see :func:`decorated_messages`), else its bound arguments by name."""
        messages = decorated_messages(arguments)
        handle.record_input(arguments if messages is None else messages)

    def record_call_result(self, handle: LlmCall, result: Any) -> None:
        """A decorated function's output: its answer in the GenAI shape (see
        :func:`answer_messages`), so that the tool calls it proposes are seen."""
        handle.record_output(answer_messages(result))


def decorated_messages(arguments: Mapping[str, Any]) -> list[Message] | None:
    """The chat messages a decorated model call was given: the argument named ``messages`` if it
    holds chat messages, else the one argument that does (a list of mappings or objects with a
    ``role``), in the GenAI shape; None when there is no such argument or more than one."""
    candidates = dict(arguments)
    if "messages" in candidates and is_chat_messages(to_jsonable(candidates["messages"])):
        return chat_messages(candidates["messages"])
    found = [value for value in candidates.values() if is_chat_messages(to_jsonable(value))]
    return chat_messages(found[0]) if len(found) == 1 else None


def answer_messages(result: Any) -> Any:
    """A model call's answer in the GenAI output shape: a string is one assistant text message, a
    chat message (or a list of them) is converted, an OpenAI-style completion (``choices`` with a
    ``message`` each) gives one message per choice; anything else is recorded as it is."""
    jsonable = to_jsonable(result)
    if isinstance(jsonable, str):
        return [message(ROLE_ASSISTANT, [text(jsonable)])]
    if isinstance(jsonable, dict) and isinstance(jsonable.get("role"), str):
        return [chat_message(jsonable)]
    if is_chat_messages(jsonable):
        return [chat_message(item) for item in jsonable]
    choices = jsonable.get("choices") if isinstance(jsonable, dict) else None
    if (
        isinstance(choices, list)
        and choices
        and all(isinstance(ch, dict) and isinstance(ch.get("message"), dict) for ch in choices)
    ):
        return [
            chat_message(ch["message"], finish_reason=finish_reason(ch.get("finish_reason")))
            for ch in choices
        ]
    return result


@overload
def llm_call(model: F, /) -> F: ...


@overload
def llm_call(
    model: str | None = None,
    provider: str | None = None,
    *,
    operation: str = c.GEN_AI_OPERATION_CHAT,
    actor: str | None = None,
    nhi: str | None = None,
    triggered_by: Refs = None,
    attributes: Mapping[str, Any] | None = None,
) -> LlmCallSpec: ...


def llm_call(
    model: str | Callable[..., Any] | None = None,
    provider: str | None = None,
    *,
    operation: str = c.GEN_AI_OPERATION_CHAT,
    actor: str | None = None,
    nhi: str | None = None,
    triggered_by: Refs = None,
    attributes: Mapping[str, Any] | None = None,
) -> LlmCallSpec | Callable[..., Any]:
    """A model call: ``with provtrace.llm_call(model="gpt-4o", provider="openai") as llm:``, or a
    decorator (``@provtrace.llm_call(model=..., provider=...)``, or bare ``@provtrace.llm_call``)."""
    options: dict[str, Any] = {
        "operation": operation,
        "actor": actor,
        "nhi": nhi,
        "triggered_by": triggered_by,
        "attributes": attributes,
    }
    if callable(model):
        return LlmCallSpec(**options)(model)
    return LlmCallSpec(model, provider, **options)


def proposed_tool_calls(messages: JsonValue) -> list[tuple[str, JsonValue, str | None]]:
    """``(name, arguments, id)`` of every ``tool_call`` part of GenAI output messages
    (``[{"role": "assistant", "parts": [{"type": "tool_call", "id", "name", "arguments"}]}]``);
    arguments given as JSON text (as OpenAI returns them) are parsed."""
    found: list[tuple[str, JsonValue, str | None]] = []
    for item in messages if isinstance(messages, list) else [messages]:
        parts = item.get("parts") if isinstance(item, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if not (
                isinstance(part, dict)
                and part.get("type") == "tool_call"
                and isinstance(part.get("name"), str)
            ):
                continue
            arguments = part.get("arguments", {})
            if isinstance(arguments, str):
                with contextlib.suppress(ValueError):  # not JSON: matched as the text it is
                    arguments = json.loads(arguments)
            call_id = part.get("id")
            found.append((part["name"], arguments, call_id if isinstance(call_id, str) else None))
    return found


class ToolCall(StepHandle):
    step = c.STEP_TOOL_CALL
    input_attribute = c.GEN_AI_TOOL_CALL_ARGUMENTS
    output_attribute = c.GEN_AI_TOOL_CALL_RESULT

    def record_input(self, value: Any) -> str:
        """Record the tool's arguments; if the model proposed this very call (same tool name,
        same canonical arguments) and nothing linked it yet, link it ``triggered_by`` that
        proposal."""
        digest = super().record_input(value)
        spec = self.spec
        if digest and self.decision is not None and spec.triggered_by is None and not self.proposal_linked:
            assert isinstance(spec, ToolCallSpec)
            self.link_proposal(self.decision.proposal(name=spec.name, arguments_sha256=digest))
        return digest

    def mark_tool_error(self, error_type: str = c.ERROR_TYPE_TOOL_ERROR) -> None:
        """The tool answered with an error result (not an exception)."""
        with self.recording("tool error"):
            self.span.set_attribute(c.ERROR_TYPE, error_type)
            self.span.set_status(Status(StatusCode.ERROR, error_type))

    def mark_rpc_error(self, code: int | str, message: str = "") -> None:
        """The peer answered with a JSON-RPC error: ``error.type`` and ``rpc.response.status_code``
        carry its code (the MCP conventions), also when an exception for it ends the step."""
        with self.recording("rpc error"):
            self.error_type = str(code)
            self.span.set_attribute(c.ERROR_TYPE, self.error_type)
            self.span.set_attribute(c.RPC_RESPONSE_STATUS_CODE, self.error_type)
            self.span.set_status(Status(StatusCode.ERROR, REDACTOR.text(message)[:1024]))


class ToolCallSpec(StepSpec[ToolCall]):
    handle_type = ToolCall
    step = c.STEP_TOOL_CALL

    def __init__(
        self,
        name: str,
        *,
        call_id: str | None = None,
        actor: str | None = None,
        nhi: str | None = None,
        triggered_by: Refs = None,
        attributes: Mapping[str, Any] | None = None,
        span_name: str | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        operation: str | None = c.GEN_AI_OPERATION_EXECUTE_TOOL,
    ) -> None:
        """``span_name``, ``kind`` and ``operation`` let a protocol instrumentation follow its own
        conventions (MCP: ``tools/call {name}``, CLIENT or SERVER, and no ``gen_ai.operation.name``
        for a resource read or a prompt fetch)."""
        super().__init__(actor=actor, nhi=nhi, triggered_by=triggered_by, attributes=attributes)
        self.name = name
        self.call_id = call_id
        self.custom_span_name = span_name
        self.kind = kind
        self.operation = operation

    def span_name(self) -> str:
        return self.custom_span_name or f"{c.GEN_AI_OPERATION_EXECUTE_TOOL} {self.name}"

    def proposal(self, decision: DecisionState) -> Proposal | None:
        """A tool call carrying the model's tool call id matches it at once; one without is
        matched by name and arguments when they are recorded."""
        return decision.proposal(call_id=self.call_id) if self.call_id else None

    def step_attributes(self, decision: DecisionState | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {c.GEN_AI_TOOL_NAME: self.name}
        if self.operation:
            attributes[c.GEN_AI_OPERATION_NAME] = self.operation
        if self.call_id:
            attributes[c.GEN_AI_TOOL_CALL_ID] = self.call_id
        return attributes


@overload
def tool_call(name: F, /) -> F: ...


@overload
def tool_call(
    name: str,
    *,
    call_id: str | None = None,
    actor: str | None = None,
    nhi: str | None = None,
    triggered_by: Refs = None,
    attributes: Mapping[str, Any] | None = None,
    span_name: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    operation: str | None = c.GEN_AI_OPERATION_EXECUTE_TOOL,
) -> ToolCallSpec: ...


def tool_call(
    name: str | Callable[..., Any],
    *,
    call_id: str | None = None,
    actor: str | None = None,
    nhi: str | None = None,
    triggered_by: Refs = None,
    attributes: Mapping[str, Any] | None = None,
    span_name: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    operation: str | None = c.GEN_AI_OPERATION_EXECUTE_TOOL,
) -> ToolCallSpec | Callable[..., Any]:
    """A tool call: ``@provtrace.tool_call("lookup_ip")`` (or bare ``@provtrace.tool_call``) or
    ``with provtrace.tool_call("lookup_ip") as tool:``."""
    options: dict[str, Any] = {
        "call_id": call_id,
        "actor": actor,
        "nhi": nhi,
        "triggered_by": triggered_by,
        "attributes": attributes,
        "span_name": span_name,
        "kind": kind,
        "operation": operation,
    }
    if callable(name):
        return ToolCallSpec(name.__name__, **options)(name)
    return ToolCallSpec(name, **options)

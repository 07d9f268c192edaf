"""``llm_call`` and ``tool_call``: what the model was asked and answered, and the tools it used."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, overload

from opentelemetry.trace import SpanKind, Status, StatusCode

from provtrace import conventions as c
from provtrace.content import REDACTOR
from provtrace.steps.base import Refs, StepHandle, StepSpec
from provtrace.steps.scope import DecisionState

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

    def _remember(self) -> None:
        if self.error is None:  # only an answer can propose later steps (triggered_by)
            super()._remember()

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


class ToolCall(StepHandle):
    step = c.STEP_TOOL_CALL
    input_attribute = c.GEN_AI_TOOL_CALL_ARGUMENTS
    output_attribute = c.GEN_AI_TOOL_CALL_RESULT

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

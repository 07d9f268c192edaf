"""One model call as an ``llm_call`` step: what was asked, what came back, and the span it lives on.

An instrumentation describes the request (:class:`Request`), calls :func:`start`, runs the client
inside :meth:`ModelCall.running` and hands back what it returned through :meth:`ModelCall.finish`
(or :meth:`ModelCall.fail`). The step's input is the request's messages in the GenAI shape, its
output the response's messages, so the same conversation digests the same whichever client or
API carried it, streamed or not.

One operation, one span:

- when another instrumentation wrapped the same client method further out and its GenAI span for
  this very call is current (``opentelemetry-instrumentation-genai-openai``, say), provtrace makes
  that span the step (see :func:`provtrace.instrumentation.adopted`) instead of opening a second
  one, and guards it (see :mod:`provtrace.genai.lending`) so that what that instrumentation writes
  later cannot replace provtrace's redacted content;
- when the client traces its own calls further in (the Anthropic SDK does), the step's span is
  lent to it (:func:`provtrace.genai.lending.lending_tracer`), so the client's attributes land on
  the step.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from provtrace import conventions as c
from provtrace import runtime
from provtrace.content import JsonValue
from provtrace.genai.lending import guard, lent
from provtrace.messages import Message
from provtrace.steps.base import report_recording_error
from provtrace.steps.calls import LlmCall, LlmCallSpec
from provtrace.steps.interop import adopt


@dataclasses.dataclass(frozen=True)
class Request:
    """What an instrumentation knows of a model call before it is sent."""

    provider: str
    model: str | None
    messages: Sequence[Message]
    operation: str = c.GEN_AI_OPERATION_CHAT
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    max_tokens: int | None = None
    stop_sequences: Sequence[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    choice_count: int | None = None
    output_type: str | None = None
    server_address: str | None = None
    server_port: int | None = None

    def attributes(self) -> dict[str, Any]:
        """The conventions' request attributes that have a value (the span starts with them)."""
        values: dict[str, Any] = {
            c.GEN_AI_REQUEST_TEMPERATURE: _number(self.temperature),
            c.GEN_AI_REQUEST_TOP_P: _number(self.top_p),
            c.GEN_AI_REQUEST_TOP_K: _number(self.top_k),
            c.GEN_AI_REQUEST_MAX_TOKENS: _integer(self.max_tokens),
            c.GEN_AI_REQUEST_SEED: _integer(self.seed),
            c.GEN_AI_REQUEST_FREQUENCY_PENALTY: _number(self.frequency_penalty),
            c.GEN_AI_REQUEST_PRESENCE_PENALTY: _number(self.presence_penalty),
            c.GEN_AI_OUTPUT_TYPE: self.output_type,
            c.SERVER_ADDRESS: self.server_address,
            c.SERVER_PORT: _integer(self.server_port),
        }
        if self.stop_sequences:
            values[c.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(str(s) for s in self.stop_sequences)
        if self.choice_count is not None and self.choice_count != 1:
            values[c.GEN_AI_REQUEST_CHOICE_COUNT] = _integer(self.choice_count)
        if self.stream:
            values[c.GEN_AI_REQUEST_STREAM] = True
        return {key: value for key, value in values.items() if value is not None}


@dataclasses.dataclass
class Response:
    """What came back: the output messages in the GenAI shape and the response's metadata.
    ``input_tokens`` counts every input token, cached ones included (as the conventions ask);
    ``partial`` marks a streamed answer that ended before the model finished it."""

    messages: list[Message]
    model: str | None = None
    response_id: str | None = None
    finish_reasons: Sequence[str] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    partial: bool = False


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ModelCall:
    """A model call in progress: the ``llm_call`` step and the span it is recorded on."""

    def __init__(self, handle: LlmCall, spec: LlmCallSpec) -> None:
        self.handle = handle
        self._spec = spec
        self._done = False

    @property
    def span(self) -> Span:
        return self.handle.span

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The block that runs the client: the step's span is current and lent to the client's
        own tracing (see :mod:`provtrace.genai.lending`)."""
        with self.handle.activated(), lent(self.handle.span):
            yield

    def finish(self, response: Response | None) -> None:
        """Record the response (nothing is recorded for ``None``: the answer was never read) and
        end the step; runs once, later calls do nothing."""
        if self._done:
            return
        self._done = True
        if response is not None:
            record_response(self.handle, response)
        self._end(None)

    def fail(self, error: BaseException, response: Response | None = None) -> None:
        """End the step with the client's error (and what had arrived before it, if anything)."""
        if self._done:
            return
        self._done = True
        if response is not None:
            record_response(self.handle, response)
        self._end(error)

    def _end(self, error: BaseException | None) -> None:
        self.handle._finish(error)
        if not self.handle.owns_span:  # adopted: its owner ends it, on provtrace's terms
            guard(self.handle.span)


def record_response(handle: LlmCall, response: Response) -> None:
    """Output digest and content (proposals included), response metadata and token usage."""
    handle.record_output(response.messages)
    handle.set_response(
        model=response.model, response_id=response.response_id, finish_reasons=response.finish_reasons
    )
    handle.set_usage(input_tokens=response.input_tokens, output_tokens=response.output_tokens)
    with handle.recording("usage details"):
        for attribute, value in (
            (c.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, response.cache_read_input_tokens),
            (c.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, response.cache_creation_input_tokens),
            (c.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, response.reasoning_output_tokens),
        ):
            if isinstance(value, int):
                handle.span.set_attribute(attribute, value)
        if response.partial:
            handle.span.set_attribute(c.OUTPUT_PARTIAL, True)


def start(request: Request) -> ModelCall | None:
    """Open the ``llm_call`` step of a model call, or adopt the GenAI span an outer instrumentation
    opened for it, and record its input. None when the call runs inside an ``llm_call`` step the
    application opened itself (it records the call; a second step would double it), and on an
    internal error, which is reported: the instrumentation then calls the client unobserved."""
    try:
        spec = LlmCallSpec(
            request.model,
            request.provider,
            operation=request.operation,
            attributes=request.attributes(),
        )
        if _recorded_by_hand():
            return None
        outer = outer_span(request)
        if outer is not None:
            handle = adopt(spec, outer)
            spec.before_run(handle)
        else:
            handle = spec._begin()
        handle.record_input(list(request.messages))
        return ModelCall(handle, spec)
    except Exception as exc:  # noqa: BLE001 - recording never breaks the call
        report_recording_error("llm_call start", exc)
        return None


def _recorded_by_hand() -> bool:
    """The application records this call itself: it runs inside an open ``llm_call`` step."""
    attributes = getattr(trace.get_current_span(), "attributes", None) or {}
    return bool(attributes.get(c.STEP) == c.STEP_LLM_CALL and trace.get_current_span().is_recording())


def outer_span(request: Request) -> Span | None:
    """The current span when another instrumentation opened it for this very call: a recording
    CLIENT span that provtrace's pipeline will seal, with a GenAI operation and this request's
    model, and not already a provenance step."""
    span = trace.get_current_span()
    active = runtime.current()
    if active is None or not span.is_recording() or getattr(span, "kind", None) is not SpanKind.CLIENT:
        return None
    attributes: Mapping[str, JsonValue] = getattr(span, "attributes", None) or {}
    if (
        c.STEP in attributes
        or not attributes.get(c.GEN_AI_OPERATION_NAME)
        or attributes.get(c.GEN_AI_REQUEST_MODEL) != request.model
        or not active.seals(span.get_span_context().span_id)
    ):
        return None
    return span

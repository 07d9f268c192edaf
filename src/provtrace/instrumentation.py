"""The public API for instrumentation authors: everything a library integration needs, and all
it may use of provtrace besides ``provtrace`` itself and ``provtrace.conventions``.

What an instrumentation does with it, in the order of a call it wraps:

- start a step on a span of its own (``provtrace.tool_call(...)``, ``provtrace.secret_fetch(...)``
  and the other step factories, used as context managers), or turn a span the instrumented
  library already made into the step (:func:`adopted`), so that one operation is one span;
- record input and output through the one capture and redaction path (the handles'
  ``record_input`` / ``record_output``: digests of the original, content per capture mode);
- register every secret value it saw fetched (:func:`taint`), so that it is scrubbed wherever it
  appears later, and carry taint across the wire to a peer (:func:`tainted_spans`,
  :func:`taint_spans`);
- continue a decision that a remote caller opened (:func:`continued_decision`);
- never break the application: wrap recording code in ``handle.recording(what)`` or report an
  internal error with :func:`report_recording_error`; look work up with instrumentation
  suppressed (:func:`suppressed`);
- read the pipeline's state (:func:`health`, :func:`tracer_provider`).

The shared test tooling for instrumentations is the pytest plugin ``provtrace.testing``.

LLM client instrumentations build on :mod:`provtrace.genai`, the public layer they share (the
GenAI message shape, request and response attributes, the ``llm_call`` lifecycle around a call,
streams, and one span per call next to other tracing): see docs/llm.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import TracerProvider

from provtrace import runtime
from provtrace.content import REDACTOR, SECRETS, JsonValue, taint_spans, tainted_spans, to_jsonable
from provtrace.runtime import Health
from provtrace.steps.base import StepHandle, StepSpec, record_exception, report_recording_error
from provtrace.steps.calls import LlmCall, LlmCallSpec, ToolCall, ToolCallSpec
from provtrace.steps.interop import adopt, adopted, continued_decision
from provtrace.steps.scope import DecisionState, current_decision
from provtrace.steps.secrets import SecretFetch, SecretFetchSpec

__all__ = [
    "DecisionState",
    "Health",
    "JsonValue",
    "LlmCall",
    "LlmCallSpec",
    "SecretFetch",
    "SecretFetchSpec",
    "StepHandle",
    "StepSpec",
    "ToolCall",
    "ToolCallSpec",
    "adopt",
    "adopted",
    "continued_decision",
    "current_decision",
    "health",
    "record_exception",
    "redact",
    "report_recording_error",
    "suppressed",
    "taint",
    "taint_spans",
    "tainted_spans",
    "to_jsonable",
    "tracer_provider",
]


def taint(value: object) -> None:
    """Register a fetched secret value (and its parts: fields of a structured secret, the token
    of ``Bearer token``, ...) for redaction everywhere in this process. Never recorded."""
    SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` without tainted secret values and well-known credential shapes: for strings an
    instrumentation records outside a step's content (a peer's self-reported name, an error)."""
    return REDACTOR.text(text)


def health() -> Health | None:
    """The pipeline's health, or None when provtrace is not configured."""
    active = runtime.current()
    return active.health() if active is not None else None


def tracer_provider() -> TracerProvider | None:
    """The tracer provider provtrace records into, or None when it is not configured."""
    active = runtime.current()
    return active.tracer_provider if active is not None else None


@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Run the block with OpenTelemetry instrumentation suppressed: for the lookups an
    instrumentation makes itself (who is this token?), which must not become evidence."""
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        otel_context.detach(token)

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
  suppressed (:func:`suppressed`, :func:`is_suppressed`);
- read the pipeline's state (:func:`health`, :func:`tracer_provider`).

And the pieces secret-store instrumentations share:

- :class:`Patches` of targets: wrapt wraps applied on import, removed symmetrically;
- :class:`CredentialCache`: who a credential belongs to, looked up once per credential;
- :func:`mark_failed`: an error step for a failure that raised nothing (a batch item, a read
  the library turned into ``None``);
- :func:`add_link`, :func:`remember_written`, :func:`link_written`: the ``written_by`` link from a
  fetch to the action that wrote the version it read;
- :class:`LogScrubber`: the library's own log records kept free of secret values.

The shared test tooling for instrumentations is the pytest plugin ``provtrace.testing``.

LLM client instrumentations build on :mod:`provtrace.genai`, the public layer they share (the
GenAI message shape, request and response attributes, the ``llm_call`` lifecycle around a call,
streams, and one span per call next to other tracing): see docs/llm.md.
"""

from __future__ import annotations

from opentelemetry.trace import Status, StatusCode, TracerProvider

from provtrace import conventions as c
from provtrace import runtime
from provtrace.content import REDACTOR, SECRETS, JsonValue, taint_spans, tainted_spans, to_jsonable
from provtrace.credential_cache import CredentialCache
from provtrace.log_scrubbing import LogScrubber
from provtrace.patching import Patches, Target
from provtrace.runtime import Health
from provtrace.secret_versions import add_link, forget_written, link_written, remember_written
from provtrace.steps.base import StepHandle, StepSpec, record_exception, report_recording_error
from provtrace.steps.calls import LlmCall, LlmCallSpec, ToolCall, ToolCallSpec
from provtrace.steps.interop import adopt, adopted, continued_decision
from provtrace.steps.scope import DecisionState, current_decision
from provtrace.steps.secrets import SecretFetch, SecretFetchSpec
from provtrace.suppression import is_suppressed, suppressed

__all__ = [
    "CredentialCache",
    "DecisionState",
    "Health",
    "JsonValue",
    "LlmCall",
    "LlmCallSpec",
    "LogScrubber",
    "Patches",
    "SecretFetch",
    "SecretFetchSpec",
    "StepHandle",
    "StepSpec",
    "Target",
    "ToolCall",
    "ToolCallSpec",
    "add_link",
    "adopt",
    "adopted",
    "continued_decision",
    "current_decision",
    "forget_written",
    "health",
    "is_suppressed",
    "link_written",
    "mark_failed",
    "record_exception",
    "redact",
    "remember_written",
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


def mark_failed(handle: StepHandle, error_type: str, description: str) -> None:
    """Make ``handle`` an error step (``error.type`` and ERROR status) for a failure that raised
    nothing; ``description`` is redacted like an exception message."""
    with handle.recording("failure"):
        handle.span.set_attribute(c.ERROR_TYPE, error_type)
        handle.span.set_status(Status(StatusCode.ERROR, REDACTOR.text(description)[:1024]))

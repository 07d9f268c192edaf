"""provtrace auto-instrumentation for the Anthropic Python client (the 2.x line).

Every ``client.messages.create`` (sync and async, streamed or not, and through
``with_raw_response``) and every ``client.messages.stream(...)`` block becomes a provenance
``llm_call`` step, with no change to agent code::

    import provtrace

    provtrace.configure(service_name="secops-agent")
    provtrace.instrument()  # or run the agent under `opentelemetry-instrument`

The ``tool_use`` blocks of the model's answer become proposals: a later ``tool_call`` or
``action`` of the decision that matches one is linked ``triggered_by`` the call (docs/steps.md,
"Causal links"). The client traces its own calls (a CLIENT span per call, scope
``com.anthropic.sdk.python``): provtrace lends it the step's span, so each call is one span with
the client's attributes (request id, retries) and provtrace's, and what the client would write as
content is left to provtrace's capture and redaction. Spans are recorded through the provtrace
configuration in force, so a ``tracer_provider`` passed to ``instrument()`` is accepted and not
otherwise used. The span and content logic is provtrace's shared GenAI layer (``provtrace.genai``);
this package says how Anthropic's requests and answers look.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from provtrace import genai
from provtrace_instrumentation_anthropic import messages
from provtrace_instrumentation_anthropic.package import _instruments
from provtrace_instrumentation_anthropic.version import __version__

__all__ = ["TARGETS", "AnthropicInstrumentor", "__version__"]

_MESSAGES = "anthropic.resources.messages.messages"


def lend_span(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wraps the client's ``start_api_call_span(tracer, ...)``: its tracer lends the step's span."""
    if args:
        args = (genai.lending_tracer(args[0]), *args[1:])
    elif "tracer" in kwargs:
        kwargs = {**kwargs, "tracer": genai.lending_tracer(kwargs["tracer"])}
    return wrapped(*args, **kwargs)


TARGETS = genai.Targets(
    (
        genai.Target(
            _MESSAGES, "Messages.create", genai.method(messages.describe, messages.MessagesAnswers())
        ),
        genai.Target(
            _MESSAGES,
            "AsyncMessages.create",
            genai.async_method(messages.describe, messages.MessagesAnswers()),
        ),
        genai.Target(
            _MESSAGES,
            "Messages.stream",
            genai.stream_manager(messages.describe_stream, messages.final_message),
        ),
        genai.Target(
            _MESSAGES,
            "AsyncMessages.stream",
            genai.stream_manager(messages.describe_stream, messages.final_message),
        ),
        genai.Target("anthropic._base_client", "start_api_call_span", lend_span),
    )
)


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Wraps the client methods in ``TARGETS`` when their modules are imported, whatever the
    import order; ``uninstrument()`` removes exactly those wrappers."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        TARGETS.instrument()

    def _uninstrument(self, **kwargs: Any) -> None:
        TARGETS.uninstrument()

"""provtrace auto-instrumentation for the OpenAI Python client (the 3.x line).

Every ``client.chat.completions.create`` and ``client.responses.create`` (sync and async, streamed
or not, and through ``with_raw_response``) becomes a provenance ``llm_call`` step, with no change
to agent code::

    import provtrace

    provtrace.configure(service_name="secops-agent")
    provtrace.instrument()  # or run the agent under `opentelemetry-instrument`

The tool calls in the model's answer become proposals: a later ``tool_call`` or ``action`` of the
decision that matches one is linked ``triggered_by`` the call (docs/steps.md, "Causal links").
When ``opentelemetry-instrumentation-genai-openai`` also instruments the client, its span for a
call is the step: one span per call, whatever order the two were turned on in. Spans are recorded
through the provtrace configuration in force, so a ``tracer_provider`` passed to ``instrument()``
is accepted and not otherwise used. The span and content logic is provtrace's shared GenAI layer
(``provtrace.genai``); this package says how OpenAI's requests and answers look.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from provtrace import genai
from provtrace_instrumentation_openai import chat, responses
from provtrace_instrumentation_openai.package import _instruments
from provtrace_instrumentation_openai.version import __version__

__all__ = ["TARGETS", "OpenAIInstrumentor", "__version__"]

_CHAT = "openai.resources.chat.completions.completions"
_RESPONSES = "openai.resources.responses.responses"

TARGETS = genai.Targets(
    (
        genai.Target(_CHAT, "Completions.create", genai.method(chat.describe, chat.ChatAnswers())),
        genai.Target(_CHAT, "AsyncCompletions.create", genai.async_method(chat.describe, chat.ChatAnswers())),
        genai.Target(
            _RESPONSES, "Responses.create", genai.method(responses.describe, responses.ResponsesAnswers())
        ),
        genai.Target(
            _RESPONSES,
            "AsyncResponses.create",
            genai.async_method(responses.describe, responses.ResponsesAnswers()),
        ),
    )
)


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Wraps the client methods in ``TARGETS`` when their modules are imported, whatever the
    import order; ``uninstrument()`` removes exactly those wrappers."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        TARGETS.instrument()

    def _uninstrument(self, **kwargs: Any) -> None:
        TARGETS.uninstrument()

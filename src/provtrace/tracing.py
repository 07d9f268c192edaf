"""The tracer provider settings that audit needs and OTel's defaults do not give.

The default ``ParentBased(ALWAYS_ON)`` sampler drops every span under a remote parent whose
``traceparent`` says "not sampled", a flag any caller controls (an MCP peer puts it in
``_meta``). Audit spans are recorded whatever it says; the flag is kept as a claim. Span limits
are raised so that no attribute, event or link of a provenance span is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context, attach, set_value
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState, get_current_span
from opentelemetry.util.types import Attributes

from provtrace import conventions as c

AUDIT_LIMIT = 100_000


class AuditSampler(Sampler):
    """Records and samples every span; notes when a remote parent asked for the opposite."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        recorded = dict(attributes or {})  # the SDK keeps only what the sampler returns
        if parent.is_valid and parent.is_remote and not parent.trace_flags.sampled:
            recorded[c.UPSTREAM_SAMPLED] = False
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE,
            attributes=recorded,
            trace_state=parent.trace_state if parent.is_valid else None,
        )

    def get_description(self) -> str:
        return "provtrace.AuditSampler"


def audit_span_limits() -> SpanLimits:
    """Explicit limits, independent of the environment: in the SDK ``None`` means "read
    ``OTEL_*_LIMIT``", so unlimited value lengths are asked for with ``SpanLimits.UNSET``."""
    return SpanLimits(
        max_attributes=AUDIT_LIMIT,
        max_events=AUDIT_LIMIT,
        max_links=AUDIT_LIMIT,
        max_event_attributes=AUDIT_LIMIT,
        max_link_attributes=AUDIT_LIMIT,
        max_span_attributes=AUDIT_LIMIT,
        max_attribute_length=SpanLimits.UNSET,
        max_span_attribute_length=SpanLimits.UNSET,
    )


def suppress_instrumentation() -> None:
    """For provtrace's own worker threads: instrumented libraries they use (the exporter's HTTP
    client) record nothing there, so delivering evidence never produces more evidence."""
    attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))

"""Steps over spans and decisions that provtrace did not start itself.

Auto-instrumentations meet two situations the ``with provtrace.tool_call(...)`` form does not cover:

- the instrumented library already opens the span that describes the operation (mcp 2.x opens a
  SERVER span for every request). The OTel conventions ask for one span per operation, enriched,
  rather than a second one: :func:`adopted` makes that span a provenance step and leaves ending
  it to its owner;
- the decision was opened in another process (the MCP client that called this server's tool):
  :func:`continued_decision` lets the steps recorded here carry that decision's id, while their
  facts stay local, so that a policy check or approval recorded on one side never authorizes an
  action on the other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar, cast

from opentelemetry.trace import Span, SpanContext

from provtrace.steps.base import StepHandle, StepSpec, current_capture
from provtrace.steps.scope import DecisionState, current_decision, enter_decision, exit_decision

H = TypeVar("H", bound=StepHandle)


def adopt(spec: StepSpec[H], span: Span) -> H:
    """Turn a live span someone else started into the step ``spec`` describes.

    The span gets the step's name, attributes and links as if the step had started it; the
    returned handle records content and verdicts as usual, and its finish records the step's facts
    without ending the span.
    """
    decision = current_decision()
    policy = current_capture()
    attributes, links = spec._initial(decision, policy)
    handle = cast(H, spec.handle_type(spec, span, decision, policy))
    handle.owns_span = False
    handle.started_with(links)
    with handle.recording("adopt"):
        span.update_name(spec._safe_name())
        span.set_attributes(attributes)
        for link in links:
            span.add_link(link.context, link.attributes)
        spec._started(handle)
    return handle


@contextlib.contextmanager
def adopted(spec: StepSpec[H], span: Span) -> Iterator[H]:
    """:func:`adopt` as a context manager: the body runs with the span current, and the step
    finishes (with the body's exception, if any) when the body ends; the span stays open."""
    handle = adopt(spec, span)
    try:
        spec.before_run(handle)
        with handle.activated():
            yield handle
    except BaseException as exc:
        handle._finish(exc)
        raise
    handle._finish(None)


@contextlib.contextmanager
def continued_decision(
    decision_id: str | None,
    *,
    actor: str | None,
    nhi: str | None = None,
    context: SpanContext,
) -> Iterator[DecisionState]:
    """Record the steps of this block as part of a decision opened elsewhere.

    ``decision_id`` is what the remote side claimed (empty when it said nothing, which leaves the
    steps without a decision id for the completeness check to flag); ``actor`` and ``nhi`` are
    this side's own identity, the defaults for its steps. Facts recorded inside stay in a scope of
    their own.
    """
    state = DecisionState(decision_id or "", "", actor, nhi, context)
    token = enter_decision(state)
    try:
        yield state
    finally:
        exit_decision(token)

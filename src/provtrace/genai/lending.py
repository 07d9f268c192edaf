"""A step's span shared with another instrumentation of the same call, on provtrace's terms.

Two cases (see :mod:`provtrace.genai.calls`):

- lending: a client that traces its own calls (the Anthropic SDK opens a CLIENT span inside each
  method) gets the step's span instead of opening a second one. Its tracer is wrapped with
  :func:`lending_tracer`; while a step runs the client (:func:`lent`), the first CLIENT span the
  client starts is the step's span behind a :class:`LentSpan`;
- adopting: provtrace made the span of an outer instrumentation the step, and that instrumentation
  ends it later. Once the step finished, :func:`guard` keeps what it writes afterwards in check.

Either way the other instrumentation writes through the same rules: the content attributes
provtrace records per capture mode (``gen_ai.input.messages`` and the like, ``provenance.*``) are
provtrace's alone and are dropped, every string it writes passes the redactor, an OK status (which
the SDK never lets change again) is not taken, an exception it records is left to the step (which
records it redacted), and ending and renaming the span are the step's business.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import wrapt
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import Attributes

from provtrace import conventions as c
from provtrace.content import REDACTOR

# The content attributes provtrace records itself, per capture mode and redacted.
OWNED_ATTRIBUTES = frozenset(
    {
        c.GEN_AI_INPUT_MESSAGES,
        c.GEN_AI_OUTPUT_MESSAGES,
        c.GEN_AI_SYSTEM_INSTRUCTIONS,
        c.GEN_AI_TOOL_DEFINITIONS,
        c.GEN_AI_TOOL_CALL_ARGUMENTS,
        c.GEN_AI_TOOL_CALL_RESULT,
    }
)

_lending: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "provtrace_genai_lending", default=None
)


@contextlib.contextmanager
def lent(span: Span) -> Iterator[None]:
    """While the block runs, a :func:`lending_tracer` gives ``span`` to the first CLIENT span
    started in it."""
    token = _lending.set(span)
    try:
        yield
    finally:
        _lending.reset(token)


def allowed(key: str) -> bool:
    return key not in OWNED_ATTRIBUTES and not key.startswith("provenance.")


def clean(value: Any) -> Any:
    """An attribute value another instrumentation wrote, redacted."""
    if isinstance(value, str):
        return REDACTOR.text(value)
    if isinstance(value, (list, tuple)):
        return type(value)(REDACTOR.text(v) if isinstance(v, str) else v for v in value)
    return value


def clean_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: clean(value) for key, value in (attributes or {}).items() if allowed(key)}


def _error_status(status: Status | StatusCode, description: str | None) -> Status | None:
    """The status to keep, redacted: only an error."""
    code = status.status_code if isinstance(status, Status) else status
    if code is not StatusCode.ERROR:
        return None
    text = description if description is not None else getattr(status, "description", None)
    return Status(StatusCode.ERROR, REDACTOR.text(text)[:1024] if text else None)


# The rules, each applied to the span's own method ``real``.


def _set_attribute(real: Callable[..., None], key: str, value: Any) -> None:
    if allowed(key):
        real(key, clean(value))


def _set_attributes(real: Callable[..., None], attributes: Mapping[str, Any]) -> None:
    real(clean_attributes(attributes))


def _set_status(
    real: Callable[..., None], status: Status | StatusCode, description: str | None = None
) -> None:
    kept = _error_status(status, description)
    if kept is not None:
        real(kept)


def _add_event(
    real: Callable[..., None], name: str, attributes: Attributes = None, timestamp: int | None = None
) -> None:
    real(REDACTOR.text(name), clean_attributes(attributes), timestamp)


def _ignored(*args: Any, **kwargs: Any) -> None:
    """An exception is recorded by the step it ends, redacted."""


class LentSpan(wrapt.ObjectProxy[Any]):
    """The step's span as a client's own tracing sees it (see the module docstring)."""

    def set_attribute(self, key: str, value: Any) -> None:
        _set_attribute(self.__wrapped__.set_attribute, key, value)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        _set_attributes(self.__wrapped__.set_attributes, attributes)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        _set_status(self.__wrapped__.set_status, status, description)

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        _add_event(self.__wrapped__.add_event, name, attributes, timestamp)

    def record_exception(self, *args: Any, **kwargs: Any) -> None:
        _ignored()

    def update_name(self, name: str) -> None:
        """The step's name stands."""

    def end(self, end_time: int | None = None) -> None:
        """The step ends its span, after recording the answer."""

    def __enter__(self) -> LentSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


class _LendingTracer(wrapt.ObjectProxy[Any]):
    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        span = _lending.get()
        if span is None or kind is not SpanKind.CLIENT:
            return self.__wrapped__.start_span(  # type: ignore[no-any-return]
                name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
            )
        _lending.set(None)  # one span per step: a request made inside it gets a span of its own
        borrowed = LentSpan(span)
        borrowed.set_attributes(dict(attributes or {}))
        for link in links or ():
            span.add_link(link.context, clean_attributes(link.attributes))
        return cast(Span, borrowed)

    @contextlib.contextmanager
    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Iterator[Span]:
        end_on_exit = kwargs.pop("end_on_exit", True)
        span = self.start_span(name, *args, **kwargs)
        with trace.use_span(span, end_on_exit=end_on_exit) as current:
            yield current


def lending_tracer(tracer: Tracer) -> Tracer:
    """``tracer`` for a client's own tracing, lending the running step's span (see :func:`lent`)."""
    return cast(Tracer, _LendingTracer(tracer))


def guard(span: Span) -> None:
    """Hold an adopted span, whose owner ends it after the step finished, to the same rules."""
    try:
        for name, rule in (
            ("set_attribute", _set_attribute),
            ("set_attributes", _set_attributes),
            ("set_status", _set_status),
            ("add_event", _add_event),
        ):
            setattr(span, name, functools.partial(rule, getattr(span, name)))
        span.record_exception = _ignored  # type: ignore[method-assign]
    except (AttributeError, TypeError):  # a span type that takes no instance attributes
        return

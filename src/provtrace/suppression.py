"""OpenTelemetry's "suppress instrumentation" switch, for the lookups an instrumentation makes
itself (who is this token? which version is current?), which must not become evidence."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY


@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Run the block with OpenTelemetry instrumentation suppressed."""
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        otel_context.detach(token)


def is_suppressed() -> bool:
    """Whether instrumentation is suppressed here (an instrumentation then records nothing)."""
    return bool(otel_context.get_value(_SUPPRESS_INSTRUMENTATION_KEY))

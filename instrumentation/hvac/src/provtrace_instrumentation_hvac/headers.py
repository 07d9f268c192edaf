"""A ``traceparent`` header on every Vault request, so that the server's audit log can be joined to
the trace: with ``sys/config/auditing/request-headers/traceparent`` set (``hmac=false``), each
audit entry's ``request.headers`` holds the span that made the request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import propagate

from provtrace.instrumentation import is_suppressed, report_recording_error


def inject_trace_context(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``RawAdapter.request(method, url, headers=None, ...)``: add the current trace context."""
    if is_suppressed():
        return wrapped(*args, **kwargs)
    try:
        if len(args) >= 3:
            headers = dict(args[2] or {})
            propagate.inject(headers)
            args = (*args[:2], headers, *args[3:])
        else:
            headers = dict(kwargs.get("headers") or {})
            propagate.inject(headers)
            kwargs = {**kwargs, "headers": headers}
    except Exception as exc:  # noqa: BLE001 - a missing header never stops the request
        report_recording_error("hvac traceparent", exc)
    return wrapped(*args, **kwargs)


def targets() -> list[tuple[str, str, Callable[..., Any]]]:
    return [("hvac.adapters", "RawAdapter.request", inject_trace_context)]

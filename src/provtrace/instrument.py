"""``provtrace.instrument()``: turn on every installed provtrace instrumentation."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from opentelemetry.trace import TracerProvider

from provtrace import runtime

logger = logging.getLogger("provtrace")

DISTRIBUTION_PREFIX = "provtrace-instrumentation-"


def instrument(tracer_provider: TracerProvider | None = None) -> list[str]:
    """Instrument every library for which a provtrace instrumentation is installed.

    Each instrumentation is an ordinary OpenTelemetry ``BaseInstrumentor`` registered under the
    ``opentelemetry_instrumentor`` entry point, so ``opentelemetry-instrument`` finds them too.
    Returns the names of the instrumentations turned on; one that fails is logged and skipped.
    """
    provider = tracer_provider
    active = runtime.current()
    if provider is None and active is not None:
        provider = active.tracer_provider
    enabled: list[str] = []
    for entry in entry_points(group="opentelemetry_instrumentor"):
        dist = entry.dist
        if dist is None or not dist.metadata["Name"].lower().startswith(DISTRIBUTION_PREFIX):
            continue
        try:
            instrumentor = entry.load()()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(tracer_provider=provider)
            enabled.append(entry.name)
        except Exception as exc:  # noqa: BLE001 - one broken instrumentation must not stop others
            logger.warning("provtrace could not enable instrumentation %s: %r", entry.name, exc)
    return enabled

"""The pipeline's counters as OpenTelemetry metrics (``provtrace.<counter>``).

Instruments are registered once per meter provider and read the active configuration's counters
when collected, so calling ``configure()`` again does not register them twice.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from provtrace import conventions as c
from provtrace import runtime
from provtrace.__about__ import __version__
from provtrace.counters import COUNTER_NAMES, GAUGE_NAMES

_lock = threading.Lock()
_registered: weakref.WeakSet[MeterProvider] = weakref.WeakSet()
_global_registered = False


def _observe(name: str, _: CallbackOptions) -> Iterable[Observation]:
    active = runtime.current()
    if active is None:
        return []
    return [Observation(active.counters[name])]


def register(meter_provider: MeterProvider | None = None) -> None:
    global _global_registered  # noqa: PLW0603 - registered once per process
    with _lock:
        if meter_provider is None:
            if _global_registered:
                return
            _global_registered = True
        elif meter_provider in _registered:
            return
        else:
            _registered.add(meter_provider)
    meter = metrics.get_meter(c.INSTRUMENTATION_NAME, __version__, meter_provider=meter_provider)
    for name in COUNTER_NAMES:
        meter.create_observable_counter(f"provtrace.{name}", callbacks=[functools.partial(_observe, name)])
    for name in GAUGE_NAMES:
        meter.create_observable_gauge(f"provtrace.{name}", callbacks=[functools.partial(_observe, name)])

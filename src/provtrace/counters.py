"""The pipeline's counters and gauges: the one place their names are defined.

Read through ``handle.counters`` and exported as OpenTelemetry metrics ``provtrace.<name>``.
"""

from __future__ import annotations

import threading
from typing import Final

COUNTER_NAMES: Final = (
    "segments_checked",
    "segments_complete",
    "segments_incomplete",
    "segments_unchecked",
    "segments_quarantined",
    "spans_processed",
    "spans_lost",
    "seals",
    "heartbeats",
    "segments_delivered",
    "delivery_failures",
    "segments_refused",
    "spool_torn_records",
    "delivery_auth_failures",
    "recording_errors",
    "rule_errors",
    "handler_errors",
    "guard_refusals",
    "steps_unrecorded",
    "checkpoints",
    "signing_errors",
    "timestamps",
    "timestamp_errors",
    "clock_steps_back",
    "clock_steps_forward",
    "streams_died",
    "decisions_unfinished",
    "spans_recovered",
)
GAUGE_NAMES: Final = ("buffered_spans", "buffered_traces", "spool_pending_bytes")


class Counters:
    """Thread-safe monotonic counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(COUNTER_NAMES, 0)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

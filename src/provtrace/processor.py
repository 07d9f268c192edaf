"""ProvenanceProcessor: assembles ended spans into trace segments, on the agent's thread.

A trace's spans are buffered until its local root ends; that set is one segment, handed on to be
converted, checked and sealed off the agent's thread. Spans ending later (async stragglers) form a
follow-up segment of the same trace. Decisions that never end are flushed after a timeout, and at
the memory bound the oldest segment is flushed early: a span is never dropped here. The work done
per span on the agent's thread is a dictionary update.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from provtrace import conventions as c

logger = logging.getLogger("provtrace.processor")


@dataclasses.dataclass(frozen=True)
class RawSegment:
    """Ended SDK spans of one trace, flushed together, with why and which spans were still open."""

    trace_id: int
    spans: tuple[ReadableSpan, ...]
    reason: str
    open_span_ids: tuple[int, ...] = ()


@dataclasses.dataclass
class _TraceBuffer:
    first_seen: float
    open: dict[int, bool] = dataclasses.field(default_factory=dict)  # span id -> is local root
    spans: list[ReadableSpan] = dataclasses.field(default_factory=list)
    timed_out: bool = False


@dataclasses.dataclass(frozen=True)
class ProcessorLimits:
    max_buffered_spans: int = 100_000
    max_buffered_traces: int = 10_000
    decision_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_buffered_spans < 1 or self.max_buffered_traces < 1:
            raise ValueError("buffer bounds must be at least 1")
        if self.decision_timeout_s <= 0:
            raise ValueError("decision timeout must be positive")


def _is_local_root(span: ReadableSpan) -> bool:
    return span.parent is None or span.parent.is_remote


class ProvenanceProcessor(SpanProcessor):
    """Buffers spans per trace and passes :class:`RawSegment` s to ``emit`` (never under its lock)."""

    def __init__(
        self,
        emit: Callable[[RawSegment], None],
        *,
        limits: ProcessorLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self.limits = limits or ProcessorLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._traces: collections.OrderedDict[int, _TraceBuffer] = collections.OrderedDict()
        self._buffered = 0
        self._closed = False
        self.spans_after_shutdown = 0

    # --- SpanProcessor ----------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        ctx = span.get_span_context()
        with self._lock:
            buffer = self._traces.get(ctx.trace_id)
            if buffer is None:
                buffer = self._traces[ctx.trace_id] = _TraceBuffer(first_seen=self._clock())
            buffer.open[ctx.span_id] = _is_local_root(span)

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        if ctx is None:
            return
        segments: list[RawSegment] = []
        with self._lock:
            if self._closed:
                self.spans_after_shutdown += 1
                logger.error(
                    "span %016x of trace %032x ended after provtrace shut down; it is lost",
                    ctx.span_id,
                    ctx.trace_id,
                )
                return
            buffer = self._traces.get(ctx.trace_id)
            if buffer is None:  # started before this processor was attached
                buffer = self._traces[ctx.trace_id] = _TraceBuffer(first_seen=self._clock())
            was_root = buffer.open.pop(ctx.span_id, _is_local_root(span))
            buffer.spans.append(span)
            self._buffered += 1
            if was_root:
                segments.append(self._take(ctx.trace_id, c.SEAL_REASON_ROOT_ENDED))
            elif not buffer.open:
                segments.append(self._take(ctx.trace_id, c.SEAL_REASON_STRAGGLERS))
            segments.extend(self._enforce_bounds())
        for segment in segments:
            self._emit(segment)

    def shutdown(self) -> None:
        for segment in self.flush_all(c.SEAL_REASON_SHUTDOWN, close=True):
            self._emit(segment)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        for segment in self.flush_ready():
            self._emit(segment)
        return True

    # --- flushing ---------------------------------------------------------------------------

    def _take(self, trace_id: int, reason: str) -> RawSegment:
        """Cut the buffered spans of a trace into a segment (caller holds the lock)."""
        buffer = self._traces[trace_id]
        spans = tuple(buffer.spans)
        open_ids = tuple(buffer.open)
        buffer.spans.clear()
        self._buffered -= len(spans)
        if not buffer.open:
            del self._traces[trace_id]
        return RawSegment(trace_id, spans, reason, open_ids)

    def _enforce_bounds(self) -> list[RawSegment]:
        """Flush the oldest buffered segments early while a bound is exceeded (lock held)."""
        segments: list[RawSegment] = []
        over_traces = len(self._traces) > self.limits.max_buffered_traces
        while self._buffered > self.limits.max_buffered_spans or over_traces:
            over_traces = False
            oldest = next((t for t, b in self._traces.items() if b.spans), None)
            if oldest is None:
                break
            logger.warning(
                "provtrace buffer bound reached: flushing trace %032x early (segment marked %s)",
                oldest,
                c.SEAL_REASON_MEMORY_BOUND,
            )
            segments.append(self._take(oldest, c.SEAL_REASON_MEMORY_BOUND))
        return segments

    def sweep(self) -> list[RawSegment]:
        """Segments of decisions past the timeout (returned, not emitted)."""
        deadline = self._clock() - self.limits.decision_timeout_s
        segments: list[RawSegment] = []
        with self._lock:
            for trace_id, buffer in list(self._traces.items()):
                if buffer.first_seen <= deadline and not buffer.timed_out:
                    buffer.timed_out = True
                    segments.append(self._take(trace_id, c.SEAL_REASON_TIMEOUT))
        return segments

    def flush_ready(self) -> list[RawSegment]:
        """Segments whose local roots have all ended but which were not flushed yet."""
        with self._lock:
            ready = [t for t, b in self._traces.items() if b.spans and not any(b.open.values())]
            return [self._take(t, c.SEAL_REASON_FLUSH) for t in ready]

    def flush_all(self, reason: str, *, close: bool = False) -> list[RawSegment]:
        with self._lock:
            segments = [self._take(t, reason) for t, b in list(self._traces.items()) if b.spans or b.open]
            if close:
                self._closed = True
                self._traces.clear()
            return segments

    @property
    def buffered_spans(self) -> int:
        return self._buffered

    @property
    def buffered_traces(self) -> int:
        return len(self._traces)

"""ProvenanceProcessor: assembles ended spans into trace segments, on the agent's thread.

Spans are buffered per local root (a span with no parent, or a remote one) until that root ends;
its subtree is one segment, handed on to be converted, checked and sealed off the agent's thread.
A trace can hold several local roots at once (a server handling calls of a caller in the same
process), and each is flushed on its own. Spans of a subtree ending after its root (async
stragglers) form a follow-up segment. Roots that never end are flushed after a timeout, and at the
memory bound the oldest buffered subtree is flushed early: a span is never dropped here. The work
done per span on the agent's thread is a few dictionary updates.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from provtrace import conventions as c

logger = logging.getLogger("provtrace.processor")


@dataclasses.dataclass(frozen=True)
class RawSegment:
    """Ended SDK spans of one local-root subtree, flushed together, with why and what was open."""

    trace_id: int
    spans: tuple[ReadableSpan, ...]
    reason: str
    open_span_ids: tuple[int, ...] = ()


@dataclasses.dataclass
class _Subtree:
    """The buffered spans under one local root."""

    trace_id: int
    first_seen: float
    members: set[int] = dataclasses.field(default_factory=set)
    open: set[int] = dataclasses.field(default_factory=set)
    spans: list[ReadableSpan] = dataclasses.field(default_factory=list)
    root_ended: bool = False
    timed_out: bool = False


class Journal(Protocol):
    """Where each span's start and end are written down as they happen (``provtrace.progress``),
    called outside the processor's lock."""

    def started(self, span: Span, root: int) -> None: ...

    def ended(self, span: ReadableSpan, root: int) -> None: ...

    def flush(self) -> None: ...


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


class ProvenanceProcessor(SpanProcessor):
    """Buffers spans per local root and passes :class:`RawSegment` s to ``emit`` (never under its
    lock)."""

    def __init__(
        self,
        emit: Callable[[RawSegment], None],
        *,
        limits: ProcessorLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_lost: Callable[[], None] = lambda: None,
        journal: Journal | None = None,
    ) -> None:
        self._emit = emit
        self._journal = journal
        self._on_lost = on_lost
        self.limits = limits or ProcessorLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._subtrees: collections.OrderedDict[int, _Subtree] = collections.OrderedDict()  # by root span id
        self._root_of: dict[int, int] = {}  # span id -> root span id, for spans of buffered subtrees
        self._buffered = 0
        self._closed = False
        self.spans_after_shutdown = 0

    # --- SpanProcessor ----------------------------------------------------------------------

    def _root(self, span: ReadableSpan, span_id: int) -> int:
        """The local root a span belongs to (lock held): its own id when its parent is absent,
        remote, or not a span this processor saw start."""
        parent = span.parent
        if parent is None or parent.is_remote:
            return span_id
        return self._root_of.get(parent.span_id, span_id)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        ctx = span.get_span_context()
        with self._lock:
            root = self._root(span, ctx.span_id)
            subtree = self._subtrees.get(root)
            if subtree is None:
                subtree = self._subtrees[root] = _Subtree(ctx.trace_id, self._clock())
            self._root_of[ctx.span_id] = root
            subtree.members.add(ctx.span_id)
            subtree.open.add(ctx.span_id)
        if self._journal is not None:
            self._journal.started(span, root)

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        if ctx is None:
            return
        segments: list[RawSegment] = []
        with self._lock:
            if self._closed:
                self.spans_after_shutdown += 1
                self._on_lost()
                logger.error(
                    "span %016x of trace %032x ended after provtrace shut down; it is lost",
                    ctx.span_id,
                    ctx.trace_id,
                )
                return
            root = self._root_of.get(ctx.span_id)
            if root is None:  # started before this processor was attached
                root = self._root(span, ctx.span_id)
                self._root_of[ctx.span_id] = root
            subtree = self._subtrees.get(root)
            if subtree is None:
                subtree = self._subtrees[root] = _Subtree(ctx.trace_id, self._clock())
            subtree.members.add(ctx.span_id)
            subtree.open.discard(ctx.span_id)
            subtree.spans.append(span)
            self._buffered += 1
            if ctx.span_id == root:
                subtree.root_ended = True
                segments.append(self._take(root, c.SEAL_REASON_ROOT_ENDED))
            elif subtree.root_ended and not subtree.open:
                segments.append(self._take(root, c.SEAL_REASON_STRAGGLERS))
            segments.extend(self._enforce_bounds())
        if self._journal is not None:
            self._journal.ended(span, root)
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

    def _take(self, root: int, reason: str) -> RawSegment:
        """Cut the buffered spans of a subtree into a segment (lock held); a subtree whose spans
        have all ended is forgotten."""
        subtree = self._subtrees[root]
        spans = tuple(subtree.spans)
        subtree.spans.clear()
        self._buffered -= len(spans)
        if subtree.root_ended and not subtree.open:
            del self._subtrees[root]
            for member in subtree.members:
                self._root_of.pop(member, None)
        return RawSegment(subtree.trace_id, spans, reason, tuple(subtree.open))

    def _enforce_bounds(self) -> list[RawSegment]:
        """Flush the oldest buffered subtrees early while a bound is exceeded (lock held)."""
        segments: list[RawSegment] = []
        over_traces = len(self._subtrees) > self.limits.max_buffered_traces
        while self._buffered > self.limits.max_buffered_spans or over_traces:
            over_traces = False
            oldest = next((root for root, s in self._subtrees.items() if s.spans), None)
            if oldest is None:
                break
            logger.warning(
                "provtrace buffer bound reached: flushing trace %032x early (segment marked %s)",
                self._subtrees[oldest].trace_id,
                c.SEAL_REASON_MEMORY_BOUND,
            )
            segments.append(self._take(oldest, c.SEAL_REASON_MEMORY_BOUND))
        return segments

    def sweep(self) -> list[RawSegment]:
        """Segments of roots past the timeout (returned, not emitted)."""
        deadline = self._clock() - self.limits.decision_timeout_s
        segments: list[RawSegment] = []
        with self._lock:
            for root, subtree in list(self._subtrees.items()):
                overdue = subtree.first_seen <= deadline
                # An open root is flushed once, then whatever ends under it; a root that ended
                # but still waits on stragglers has its ended spans flushed rather than held.
                if overdue and (subtree.spans or not (subtree.timed_out or subtree.root_ended)):
                    subtree.timed_out = True
                    segments.append(self._take(root, c.SEAL_REASON_TIMEOUT))
        return segments

    def flush_ready(self) -> list[RawSegment]:
        """Buffered spans of subtrees whose root has ended (stragglers still open stay open)."""
        with self._lock:
            ready = [root for root, s in self._subtrees.items() if s.spans and s.root_ended]
            return [self._take(root, c.SEAL_REASON_FLUSH) for root in ready]

    def flush_all(self, reason: str, *, close: bool = False) -> list[RawSegment]:
        with self._lock:
            segments = [
                self._take(root, reason) for root, s in list(self._subtrees.items()) if s.spans or s.open
            ]
            if close:
                self._closed = True
                self._subtrees.clear()
                self._root_of.clear()
            return segments

    def tracks(self, span_id: int) -> bool:
        """Whether this processor saw the span start (so its evidence will be sealed): the guard
        asks before it lets an action run, and the journal has the action's start on disk then."""
        if self._journal is not None:
            self._journal.flush()
        with self._lock:
            return not self._closed and span_id in self._root_of

    @property
    def buffered_spans(self) -> int:
        return self._buffered

    @property
    def buffered_traces(self) -> int:
        return len(self._subtrees)

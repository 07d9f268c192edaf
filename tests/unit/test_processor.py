"""Segment assembly: roots, stragglers, timeouts, the memory bound, and concurrency."""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

import provtrace
from provtrace import conventions as c
from provtrace.processor import ProcessorLimits, ProvenanceProcessor, RawSegment
from provtrace.tracing import AuditSampler
from tests.conftest import make_recorded


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def harness(**limits: float) -> tuple[ProvenanceProcessor, list[RawSegment], TracerProvider, Clock]:
    segments: list[RawSegment] = []
    clock = Clock()
    processor = ProvenanceProcessor(segments.append, limits=ProcessorLimits(**limits), clock=clock)  # type: ignore[arg-type]
    provider = TracerProvider(sampler=AuditSampler())
    provider.add_span_processor(processor)
    return processor, segments, provider, clock


def names(segment: RawSegment) -> list[str]:
    return [span.name for span in segment.spans]


def test_segment_flushes_when_the_local_root_ends() -> None:
    _, segments, provider, _ = harness()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("a"):
            pass
        with tracer.start_as_current_span("b"):
            assert segments == []
    assert [(names(s), s.reason) for s in segments] == [(["a", "b", "root"], c.SEAL_REASON_ROOT_ENDED)]


def test_stragglers_form_a_follow_up_segment_of_the_same_trace() -> None:
    _, segments, provider, _ = harness()
    tracer = provider.get_tracer("t")
    root = tracer.start_span("root")
    from opentelemetry import trace

    straggler = tracer.start_span("late child", context=trace.set_span_in_context(root))
    root.end()
    assert [(names(s), s.reason) for s in segments] == [(["root"], c.SEAL_REASON_ROOT_ENDED)]
    straggler.end()
    assert [(names(s), s.reason) for s in segments][1] == (["late child"], c.SEAL_REASON_STRAGGLERS)
    assert segments[0].trace_id == segments[1].trace_id


def test_timeout_flushes_an_unfinished_decision_and_keeps_later_spans() -> None:
    processor, segments, provider, clock = harness(decision_timeout_s=60)
    tracer = provider.get_tracer("t")
    from opentelemetry import trace

    root = tracer.start_span("decision")
    child = tracer.start_span("step", context=trace.set_span_in_context(root))
    child.end()
    clock.now += 59
    assert processor.sweep() == []
    clock.now += 2
    (timed_out,) = processor.sweep()
    assert timed_out.reason == c.SEAL_REASON_TIMEOUT
    assert names(timed_out) == ["step"]
    assert timed_out.open_span_ids == (root.get_span_context().span_id,)
    assert processor.sweep() == []
    root.end()
    assert [(names(s), s.reason) for s in segments] == [(["decision"], c.SEAL_REASON_ROOT_ENDED)]


def test_memory_bound_flushes_the_oldest_segment_early_and_drops_nothing() -> None:
    processor, segments, provider, _ = harness(max_buffered_spans=5)
    tracer = provider.get_tracer("t")
    from opentelemetry import trace

    first = tracer.start_span("first decision")
    for i in range(7):
        tracer.start_span(f"step {i}", context=trace.set_span_in_context(first)).end()
    assert [s.reason for s in segments] == [c.SEAL_REASON_MEMORY_BOUND]
    assert processor.buffered_spans <= 5
    first.end()
    emitted = [name for s in segments for name in names(s)]
    assert sorted(emitted) == sorted([*(f"step {i}" for i in range(7)), "first decision"])


def test_trace_bound_flushes_the_oldest_trace() -> None:
    processor, segments, provider, _ = harness(max_buffered_traces=2)
    tracer = provider.get_tracer("t")
    from opentelemetry import trace

    roots = [tracer.start_span(f"decision {i}") for i in range(3)]
    for root in roots:
        tracer.start_span("step", context=trace.set_span_in_context(root)).end()
    # Three decisions stay open over a bound of two: each ended span is flushed at once.
    assert [s.reason for s in segments] == [c.SEAL_REASON_MEMORY_BOUND] * 3
    for root in roots:
        root.end()
    assert sum(len(s.spans) for s in segments) == 6
    assert processor.buffered_traces == 0


def test_spans_ending_after_shutdown_are_counted_as_lost() -> None:
    processor, segments, provider, _ = harness()
    tracer = provider.get_tracer("t")
    open_span = tracer.start_span("still open")
    processor.shutdown()
    assert [(s.reason, s.open_span_ids) for s in segments] == [
        (c.SEAL_REASON_SHUTDOWN, (open_span.get_span_context().span_id,))
    ]
    open_span.end()
    assert processor.spans_after_shutdown == 1


def archived_spans(archive: Path) -> list[dict[str, object]]:
    spans = []
    for path in sorted(archive.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            for resource in json.loads(line)["resourceSpans"]:
                for scope in resource["scopeSpans"]:
                    spans.extend(scope["spans"])
    return spans


def one_decision(i: int) -> str:
    with provtrace.decision(f"d{i}", trigger="t", actor="agent") as d:
        for j in range(5):
            with provtrace.tool_call(f"tool{j}") as tool:
                tool.record_input({"i": i, "j": j})
                tool.record_output(j)
    return d.trace_id


def test_concurrent_decisions_in_threads_and_tasks_are_all_accounted_for(tmp_path: Path) -> None:
    recorded = make_recorded(tmp_path)
    trace_ids: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(offset: int) -> None:
        start.wait()
        for i in range(offset, offset + 25):
            trace_id = one_decision(i)
            with lock:
                trace_ids.append(trace_id)

    async def task_decision(i: int) -> str:
        with provtrace.decision(f"a{i}", trigger="t", actor="agent") as d:
            for j in range(5):
                with provtrace.tool_call(f"tool{j}") as tool:
                    tool.record_input({"i": i})
                    await asyncio.sleep(0)  # interleave the tasks' spans
                    tool.record_output(j)
        return d.trace_id

    async def tasks() -> list[str]:
        return await asyncio.gather(*(task_decision(i) for i in range(100)))

    try:
        threads = [threading.Thread(target=worker, args=(i * 25,)) for i in range(8)]
        for thread in threads:
            thread.start()
        trace_ids.extend(asyncio.run(tasks()))
        for thread in threads:
            thread.join()
        assert recorded.handle.force_flush(60)
        counters = recorded.handle.counters
    finally:
        recorded.handle.shutdown(60)
    assert len(set(trace_ids)) == 300
    spans = archived_spans(tmp_path / "archive")
    per_trace = collections.Counter(str(s["traceId"]) for s in spans if s["name"] != c.SEAL_SPAN_NAME)
    assert {per_trace[t] for t in trace_ids} == {6}
    assert sum(per_trace.values()) == 1800
    seals = collections.Counter(str(s["traceId"]) for s in spans if s["name"] == c.SEAL_SPAN_NAME)
    assert all(seals[t] == 1 for t in trace_ids)
    assert counters["spans_processed"] == 1800
    assert counters["segments_complete"] == 300
    assert counters["spans_lost"] == counters["recording_errors"] == 0

"""Memory per buffered span: what an ended span costs while it waits, provtrace next to OTel.

OTel: spans queued in the ``BatchSpanProcessor`` (its export held back: a batch size and delay
larger than the run). provtrace: the ended tool calls of a decision that is still open, which the
processor holds until the decision ends. Same spans (10 string attributes each; provtrace's also
carry their step attributes, input and output digests and redacted content). Measured with
tracemalloc as the memory still allocated after ``gc.collect()``, per span, median of rounds.

    python -m bench memory
"""

from __future__ import annotations

import gc
import statistics
import tempfile
import tracemalloc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import provtrace
from bench.common import save
from bench.overhead import ARGS, ATTRS, DropExporter, work

SPANS = 2000
ROUNDS = 3


def allocated_per_span(produce: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = produce()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / SPANS


def fresh(value: Any) -> Any:
    return (value + " ")[:-1] if isinstance(value, str) else value


def otel_round(attributes: Mapping[str, Any] = ATTRS) -> float:
    provider = TracerProvider()
    processor = BatchSpanProcessor(
        DropExporter(), max_queue_size=SPANS + 1, max_export_batch_size=SPANS + 1, schedule_delay_millis=3.6e6
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")

    def produce() -> None:
        for _ in range(SPANS):
            # The step's own values (ids, digests, content) are new strings on every call.
            own = {
                k: (v + " ")[:-1] if isinstance(v, str) and k not in ATTRS else v
                for k, v in attributes.items()
            }
            with tracer.start_as_current_span("execute_tool lookup", attributes=own):
                work(**ARGS)

    per_span = allocated_per_span(produce)
    provider.shutdown()
    return per_span


def provtrace_round(home: Path) -> float:
    handle = provtrace.configure(
        service_name="bench",
        archive_dir=home / "archive",
        spool_dir=home / "spool",
        quarantine_dir=home / "quarantine",
        heartbeat_interval=3600,
        max_buffered_spans=SPANS * 2,
    )
    traced = provtrace.tool_call("lookup", attributes=ATTRS)(work)
    decision = provtrace.decision("bench", trigger="bench", actor="bench")
    decision.__enter__()

    def produce() -> None:
        for _ in range(SPANS):
            traced(**ARGS)

    per_span = allocated_per_span(produce)
    buffered = handle.counters["buffered_spans"]
    decision.__exit__(None, None, None)
    handle.shutdown(timeout_s=120)
    if buffered < SPANS:
        raise RuntimeError(f"only {buffered} spans were buffered")
    return per_span


def step_attributes(home: Path) -> dict[str, Any]:
    """The attributes a provtrace tool call's span ends with (each value its own string)."""
    handle = provtrace.configure(
        service_name="bench", archive_dir=home / "a", spool_dir=home / "s", quarantine_dir=home / "q"
    )
    ended: list[ReadableSpan] = []
    handle.tracer_provider.add_span_processor(Keep(ended))
    with provtrace.decision("bench", trigger="bench", actor="bench"):
        provtrace.tool_call("lookup", attributes=ATTRS)(work)(**ARGS)
    handle.shutdown(timeout_s=60)
    step = next(span for span in ended if span.name != "decision bench")
    return {
        key: "".join(value) if isinstance(value, str) else value for key, value in step.attributes.items()
    }


class Keep(SpanProcessor):
    def __init__(self, spans: list[ReadableSpan]) -> None:
        self.spans = spans

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        attributes = step_attributes(Path(home))
    otel, floor, ours = [], [], []
    for _ in range(ROUNDS):
        otel.append(otel_round())
        floor.append(otel_round(attributes))
        with tempfile.TemporaryDirectory() as home:
            ours.append(provtrace_round(Path(home)))
    results = {
        "spans": SPANS,
        "otel_queued_bytes_per_span": statistics.median(otel),
        "otel_with_the_steps_attributes_bytes_per_span": statistics.median(floor),
        "step_attributes": len(attributes),
        "provtrace_buffered_bytes_per_span": statistics.median(ours),
    }
    results["ratio"] = results["provtrace_buffered_bytes_per_span"] / results["otel_queued_bytes_per_span"]
    return results


def main() -> None:
    results = run()
    print(f"memory per buffered span ({SPANS} spans, median of {ROUNDS})")
    otel, ours = results["otel_queued_bytes_per_span"], results["provtrace_buffered_bytes_per_span"]
    print(f"  OTel span queued in the BatchSpanProcessor   {otel:8.0f} B")
    floor = results["otel_with_the_steps_attributes_bytes_per_span"]
    print(
        f"  the same OTel span with the step's {results['step_attributes']} attributes {floor:8.0f} B (floor)"
    )
    print(f"  provtrace step buffered in an open decision  {ours:8.0f} B")
    print(f"  ratio {results['ratio']:.2f}")
    print(f"  written to {save('memory', results)}")


if __name__ == "__main__":
    main()

"""Client CPU per span to deliver spooled segments to the real OpenTelemetry Collector.

The OTLP sink posts the spooled OTLP/JSON as it is (spliced, gzipped when large). The baseline is
the path it replaced, kept only here: decode each line into SDK ``ReadableSpan`` s and export them
as protobuf with the upstream ``OTLPSpanExporter``. Both deliver the same spooled spans to the
same collector (started on free loopback ports) in one run, in two batch shapes: one segment per
``send`` (an agent at low rate) and 256 segments per ``send`` (the spool's batch under load). CPU
is this process's (every thread), medians of ROUNDS; the ratio is what to read. Before timing,
one delivery each way is checked to arrive in the collector's archive as the same span views.

    python -m bench.otlp_sink
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

import provtrace
from bench.common import save
from provtrace.export.otlp import OtlpSink
from provtrace.export.sink import Sink
from provtrace.integrity import span_digest
from provtrace.model import SpanRecord
from provtrace.otlpjson import dumps_line, loads_line

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import stack as stack_module  # scripts/stack.py, the project's stack control

DECISIONS = 1111  # nine spans each (eight steps and the seal): 9,999 spans and a closing seal
ROUNDS = 3
BATCHES = {"one segment per send": 1, "256 segments per send": 256}

# --- the replaced path (the former provtrace.export.otlp), the baseline ----------------------

T = TypeVar("T")
_KIND = {kind.value + 1: kind for kind in SpanKind}  # OTLP numbers kinds from 1
_STATUS = {code.value: code for code in StatusCode}


def _context(trace_id: str, span_id: str, *, remote: bool, trace_state: str = "") -> SpanContext:
    state = TraceState.from_header([trace_state]) if trace_state else None
    return SpanContext(int(trace_id, 16), int(span_id, 16), remote, TraceFlags(1), state)


def _bounded(attributes: Mapping[str, object], dropped: int) -> BoundedAttributes:
    bounded = BoundedAttributes(attributes=dict(attributes), immutable=False)  # type: ignore[arg-type]
    bounded.dropped = dropped
    return bounded


def _listed(items: Sequence[T], dropped: int) -> BoundedList[T]:
    listed = BoundedList.from_seq(None, items)
    listed.dropped = dropped
    return listed


def to_readable_span(record: SpanRecord) -> ReadableSpan:
    code = _STATUS.get(record.status_code, StatusCode.UNSET)
    parent = (
        _context(record.trace_id, record.parent_span_id, remote=record.parent_is_remote)
        if record.parent_span_id
        else None
    )
    return ReadableSpan(
        name=record.name,
        context=_context(record.trace_id, record.span_id, remote=False, trace_state=record.trace_state),
        parent=parent,
        resource=Resource(dict(record.resource)),
        attributes=_bounded(record.attributes, record.dropped_attributes),
        events=_listed(
            [Event(e.name, _bounded(e.attributes, e.dropped_attributes), e.time_ns) for e in record.events],
            record.dropped_events,
        ),
        links=_listed(
            [
                Link(
                    _context(link.trace_id, link.span_id, remote=False, trace_state=link.trace_state),
                    _bounded(link.attributes, link.dropped_attributes),
                )
                for link in record.links
            ],
            record.dropped_links,
        ),
        kind=_KIND.get(record.kind, SpanKind.INTERNAL),
        status=Status(
            code, record.status_message if code is StatusCode.ERROR and record.status_message else None
        ),
        start_time=record.start_ns,
        end_time=record.end_ns,
        instrumentation_scope=InstrumentationScope(record.scope_name, record.scope_version or None),
    )


def request_chunks(lines: Sequence[str], max_bytes: int) -> Iterator[list[SpanRecord]]:
    chunk: list[SpanRecord] = []
    size = 0.0
    for line in lines:
        records = loads_line(line)
        each = len(line) / max(1, len(records))
        for record in records:
            if chunk and size + each > max_bytes:
                yield chunk
                chunk, size = [], 0.0
            chunk.append(record)
            size += each
    if chunk:
        yield chunk


class ReplacedSink:
    name = "otlp"

    def __init__(self, endpoint: str) -> None:
        self._exporter = OTLPSpanExporter(endpoint=endpoint, timeout=10)

    def send(self, lines: Sequence[str]) -> None:
        for chunk in request_chunks(lines, 4 * 1024 * 1024):
            if self._exporter.export([to_readable_span(r) for r in chunk]) is not SpanExportResult.SUCCESS:
                raise RuntimeError("the collector did not accept a batch")

    def close(self) -> None:
        self._exporter.shutdown()  # type: ignore[no-untyped-call]


# --- the measurement ---------------------------------------------------------------------------


def spooled_lines(home: Path) -> list[str]:
    """The sealed lines of DECISIONS reference-shaped decisions, as the spool holds them (the local
    archive receives the same lines)."""
    handle = provtrace.configure(
        service_name="bench",
        archive_dir=home / "archive",
        spool_dir=home / "spool",
        quarantine_dir=home / "quarantine",
        completeness="off",
        heartbeat_interval=3600,
        spool_fsync=False,
    )
    request = {"sg": "sg-123", "port": 443}
    for i in range(DECISIONS):
        with provtrace.decision(f"d{i}", trigger="alert:INC-4711", actor="agent", nhi="svc"):
            with provtrace.llm_call(model="m", provider="p") as llm:
                llm.record_input([{"role": "user", "content": "what now?"}])
                llm.record_output([{"role": "assistant", "content": "open 443"}])
            with provtrace.tool_call("lookup") as tool:
                tool.record_input({"sg": "sg-123"})
                tool.record_output({"rules": []})
            with provtrace.secret_fetch("vault", "kv/x", nhi="svc") as secret:
                secret.record_value("bench-secret-value")
            with provtrace.policy_check("p", version="1", input=request) as policy:
                policy.allow()
            with provtrace.approval(approver="alice", for_action=request) as approval:
                approval.approve()
            with provtrace.action("fw.open", target="sg-123", privileged=True, params=request) as act:
                act.record_change(before={}, after=request)
            with provtrace.verification(of=act) as check:
                check.passed()
    handle.shutdown(timeout_s=120)
    return [
        line for path in sorted((home / "archive").rglob("*.jsonl")) for line in path.open(encoding="utf-8")
    ]


def deliver(sink: Sink, lines: Sequence[str], per_send: int) -> tuple[int, int]:
    """CPU and wall nanoseconds to send every line, ``per_send`` lines per ``send``."""
    start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
    for i in range(0, len(lines), per_send):
        sink.send(lines[i : i + per_send])
    return time.process_time_ns() - start_cpu, time.perf_counter_ns() - start


def arrived_after(stack: stack_module.Stack, offset: int) -> list[SpanRecord]:
    """Spans the collector archived past ``offset`` of its live archive file."""
    with stack.archive_path.open("rb") as archive:
        archive.seek(offset)
        return [r for line in archive.read().decode().splitlines() if line.strip() for r in loads_line(line)]


def check_same_arrival(stack: stack_module.Stack, sinks: Mapping[str, Sink], lines: Sequence[str]) -> None:
    """Both paths land the same span views (and every field) in the collector's archive."""
    expected = sorted((r for line in lines for r in loads_line(line)), key=lambda r: r.span_id)
    for name, sink in sinks.items():
        offset = stack.archive_path.stat().st_size if stack.archive_path.exists() else 0
        deliver(sink, lines, 256)
        arrived = sorted(arrived_after(stack, offset), key=lambda r: r.span_id)
        assert [dumps_line([r]) for r in arrived] == [dumps_line([r]) for r in expected], name
        assert [span_digest(r) for r in arrived] == [span_digest(r) for r in expected], name


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        lines = spooled_lines(Path(home) / "agent")
        spans = sum(len(loads_line(line)) for line in lines)
        stack = stack_module.Stack(Path(home) / "stack", stack_module.Ports.free())
        stack.start(timeout=120)
        try:
            endpoint = f"{stack.otlp_http_endpoint}/v1/traces"
            sinks: dict[str, Sink] = {"replaced": ReplacedSink(endpoint), "spooled_json": OtlpSink(endpoint)}
            check_same_arrival(stack, sinks, lines)
            results: dict[str, Any] = {"spans": spans, "segments": len(lines)}
            for shape, per_send in BATCHES.items():
                samples: dict[str, list[tuple[int, int]]] = {name: [] for name in sinks}
                for _ in range(ROUNDS):
                    for name, sink in sinks.items():
                        samples[name].append(deliver(sink, lines, per_send))
                cpu = {name: statistics.median(c for c, _ in s) / spans for name, s in samples.items()}
                wall = {name: statistics.median(w for _, w in s) / spans for name, s in samples.items()}
                results[shape] = {
                    "cpu_us_per_span": {name: round(ns / 1000, 2) for name, ns in cpu.items()},
                    "wall_us_per_span": {name: round(ns / 1000, 2) for name, ns in wall.items()},
                    "cpu_ratio_new_to_replaced": round(cpu["spooled_json"] / cpu["replaced"], 3),
                }
            for sink in sinks.values():
                sink.close()
        finally:
            stack.stop()
    return results


def main() -> None:
    results = run()
    print(
        f"OTLP delivery of {results['spans']} spooled spans ({results['segments']} segments) to the collector"
    )
    print(f"{'batch':<24} {'path':<14} {'CPU µs/span':>12} {'wall µs/span':>13}")
    for shape in BATCHES:
        for name in ("replaced", "spooled_json"):
            cpu, wall = results[shape]["cpu_us_per_span"][name], results[shape]["wall_us_per_span"][name]
            print(f"{shape:<24} {name:<14} {cpu:>12.2f} {wall:>13.2f}")
        print(f"{'':<24} {'CPU ratio new/replaced':<27} {results[shape]['cpu_ratio_new_to_replaced']:.3f}")
    print(f"saved {save('otlp_sink', results)}")


if __name__ == "__main__":
    main()

"""Spans per second through provtrace's processor versus the plain BatchSpanProcessor.

The same recorded spans (decisions of eight steps each) are fed to both in one process. The
baseline is the SDK's BatchSpanProcessor with an exporter that drops everything. provtrace's path
is everything short of the network: segment assembly, conversion and secret scrubbing, the
completeness check, sealing (Ed25519-signed), the fsynced spool and the archive file. Each run is
timed until its last span has been handed off (force_flush returned).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import provtrace
from bench.overhead import DropExporter
from provtrace.config import build_settings
from provtrace.pipeline import Pipeline
from provtrace.processor import ProvenanceProcessor, RawSegment
from provtrace.records import TraceMemory, convert
from provtrace.rules import SegmentContext, evaluate
from provtrace.tracing import AuditSampler

DECISIONS = 1500
ROUNDS = 3


class Collect(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def recorded_spans() -> list[ReadableSpan]:
    """Spans of DECISIONS reference-shaped decisions, made once and reused by every run."""
    collect = Collect()
    provider = TracerProvider(sampler=AuditSampler())
    provider.add_span_processor(collect)
    handle_dir = tempfile.mkdtemp()
    handle = provtrace.configure(
        service_name="bench",
        tracer_provider=provider,
        archive_dir=Path(handle_dir) / "a",
        spool_dir=Path(handle_dir) / "s",
        quarantine_dir=Path(handle_dir) / "q",
        completeness="off",
    )
    request = {"sg": "sg-123", "port": 443}
    for i in range(DECISIONS):
        with provtrace.decision(f"d{i}", trigger="t", actor="agent", nhi="svc"):
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
    handle.shutdown(timeout_s=60)
    return collect.spans


def feed(processor: SpanProcessor, spans: Sequence[ReadableSpan]) -> None:
    for span in sorted(spans, key=lambda s: s.start_time or 0):  # spans start in this order
        processor.on_start(span)  # type: ignore[arg-type] - a ReadableSpan carries what on_start reads
    for span in spans:
        processor.on_end(span)


def batch_processor_rate(exporter: SpanExporter, spans: Sequence[ReadableSpan]) -> float:
    processor = BatchSpanProcessor(exporter, max_queue_size=len(spans) + 1)
    start = time.perf_counter()
    feed(processor, spans)
    processor.force_flush(timeout_millis=600_000)
    elapsed = time.perf_counter() - start
    processor.shutdown()
    return len(spans) / elapsed


def baseline(spans: Sequence[ReadableSpan]) -> float:
    return batch_processor_rate(DropExporter(), spans)


class EncodeToFile(DropExporter):
    """What a real exporter does short of the network: OTLP protobuf encoding, written to a file."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("ab")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._file.write(encode_spans(spans).SerializeToString())
        self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()


def baseline_encoding(spans: Sequence[ReadableSpan]) -> float:
    with tempfile.TemporaryDirectory() as home:
        return batch_processor_rate(EncodeToFile(Path(home) / "spans.pb"), spans)


def checking_only(spans: Sequence[ReadableSpan]) -> float:
    """Assembly, conversion and the completeness check, without sealing or delivery."""
    raws: list[RawSegment] = []
    processor = ProvenanceProcessor(raws.append)
    memory = TraceMemory()
    start = time.perf_counter()
    feed(processor, spans)
    for raw in raws:
        segment = convert(raw, memory, {"service.name": "bench"}, lambda where, exc: None)
        evaluate(SegmentContext(segment.trace_id, segment.records, earlier=segment.earlier))
    return len(spans) / (time.perf_counter() - start)


def provtrace_pipeline(spans: Sequence[ReadableSpan], *, fsync: bool) -> tuple[float, dict[str, int]]:
    with tempfile.TemporaryDirectory() as home:
        settings, _ = build_settings(
            service_name="bench",
            archive_dir=Path(home) / "archive",
            spool_dir=Path(home) / "spool",
            quarantine_dir=Path(home) / "quarantine",
            signing_key=Ed25519PrivateKey.generate(),
            heartbeat_interval=3600,
            spool_fsync=fsync,
        )
        pipeline = Pipeline(settings)
        start = time.perf_counter()
        feed(pipeline.processor, spans)
        assert pipeline.force_flush(timeout_s=600)
        elapsed = time.perf_counter() - start
        counters = pipeline.counters.snapshot()
        pipeline.shutdown(timeout_s=60)
    return len(spans) / elapsed, counters


def run() -> dict[str, Any]:
    spans = recorded_spans()
    base = [baseline(spans) for _ in range(ROUNDS)]
    encoding = [baseline_encoding(spans) for _ in range(ROUNDS)]
    checking = [checking_only(spans) for _ in range(ROUNDS)]
    synced = [provtrace_pipeline(spans, fsync=True) for _ in range(ROUNDS)]
    unsynced = [provtrace_pipeline(spans, fsync=False) for _ in range(ROUNDS)]
    results: dict[str, Any] = {
        "spans": len(spans),
        "decisions": DECISIONS,
        "batch_span_processor_spans_per_s": statistics.median(base),
        "batch_span_processor_otlp_encoding_spans_per_s": statistics.median(encoding),
        "provtrace_checking_only_spans_per_s": statistics.median(checking),
        "provtrace_spans_per_s": statistics.median(rate for rate, _ in synced),
        "provtrace_no_fsync_spans_per_s": statistics.median(rate for rate, _ in unsynced),
        "provtrace_counters": synced[-1][1],
    }
    for key in ("provtrace_spans_per_s", "provtrace_checking_only_spans_per_s"):
        results[f"{key}_vs_encoding_baseline"] = round(
            results[key] / results["batch_span_processor_otlp_encoding_spans_per_s"], 3
        )
    results["ratio"] = round(
        results["provtrace_spans_per_s"] / results["batch_span_processor_spans_per_s"], 3
    )
    results["ratio_no_fsync"] = round(
        results["provtrace_no_fsync_spans_per_s"] / results["batch_span_processor_spans_per_s"], 3
    )
    return results


def main() -> None:
    from bench.common import save

    results = run()
    path = save("throughput", results)
    base = results["batch_span_processor_spans_per_s"]
    encoding = results["batch_span_processor_otlp_encoding_spans_per_s"]
    rows = [
        ("BatchSpanProcessor, exporter drops", base),
        ("BatchSpanProcessor, OTLP encoding to a file", encoding),
        ("provtrace, checking only", results["provtrace_checking_only_spans_per_s"]),
        ("provtrace, sealed, fsynced spool, archive", results["provtrace_spans_per_s"]),
        ("provtrace, same without fsync", results["provtrace_no_fsync_spans_per_s"]),
    ]
    print(f"throughput over {results['spans']} spans ({results['decisions']} decisions), median of {ROUNDS}")
    print(f"  {'':45} {'spans/s':>10} {'vs drop':>8} {'vs encoding':>12}")
    for label, rate in rows:
        print(f"  {label:45} {rate:10.0f} {rate / base:8.3f} {rate / encoding:12.3f}")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()

"""Per-call cost of a provtrace step versus a plain OpenTelemetry span, side by side.

Both run in this process on the same machine, shaped like agent code: a decision (or a parent
span) holding eight tool calls. Measured per tool call: a bare function call; the call inside a
plain OTel span (SDK provider, batch processor, an exporter that drops); and the call decorated as
a provtrace ``tool_call`` with the whole pipeline behind it (conversion, completeness check, seal,
spool, archive) in each capture mode. The decision's own cost is spread over its calls.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import provtrace
from bench.common import per_call_ns, save

ARGS = {"sg": "sg-123", "port": 443, "cidr": "10.0.0.0/24", "note": "open for partner integration"}
STEPS = 8
ROUNDS_OF_DECISIONS = 250
MODES = ("none", "digest", "redacted", "full")


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def work(sg: str, port: int, cidr: str, note: str) -> dict[str, Any]:
    return {"sg": sg, "rules": [{"port": port, "cidr": cidr}]}


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"steps_per_decision": STEPS, "decisions_per_round": ROUNDS_OF_DECISIONS}

    def bare() -> None:
        for _ in range(STEPS):
            work(**ARGS)

    results["bare_call"] = per_step(bare)

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=100_000))
    tracer = provider.get_tracer("bench")

    def plain() -> None:
        with tracer.start_as_current_span("decision bench"):
            for _ in range(STEPS):
                with tracer.start_as_current_span("execute_tool lookup") as span:
                    span.set_attribute("gen_ai.tool.name", "lookup")
                    work(**ARGS)

    results["otel_span"] = per_step(plain)
    provider.shutdown()

    for mode in MODES:
        with tempfile.TemporaryDirectory() as home:
            handle = provtrace.configure(
                service_name="bench",
                archive_dir=Path(home) / "archive",
                spool_dir=Path(home) / "spool",
                quarantine_dir=Path(home) / "quarantine",
                capture_content=mode,
                completeness="enforce",
            )
            traced = provtrace.tool_call("lookup")(work)

            def decision(traced: Any = traced) -> None:
                with provtrace.decision("bench", trigger="bench", actor="bench"):
                    for _ in range(STEPS):
                        traced(**ARGS)

            results[f"provtrace_{mode}"] = per_step(decision)
            delivered = handle.shutdown(timeout_s=300)
            counters = handle.counters
            results[f"provtrace_{mode}_check"] = {
                "delivered": delivered,
                "segments_complete": counters["segments_complete"],
                "recording_errors": counters["recording_errors"],
            }
    base = results["otel_span"]
    results["ratio_to_otel_span"] = {
        mode: {
            "wall": round(results[f"provtrace_{mode}"]["wall_ns"] / base["wall_ns"], 2),
            "calling_thread_cpu": round(
                results[f"provtrace_{mode}"]["thread_cpu_ns"] / base["thread_cpu_ns"], 2
            ),
        }
        for mode in MODES
    }
    return results


def per_step(function: Any) -> dict[str, float]:
    wall, cpu = per_call_ns(function, calls=ROUNDS_OF_DECISIONS)
    return {"wall_ns": wall / STEPS, "thread_cpu_ns": cpu / STEPS}


def main() -> None:
    results = run()
    path = save("overhead", results)
    print(f"per tool call, {STEPS} per decision: wall time | CPU time of the calling thread")

    def row(label: str, key: str, suffix: str = "") -> None:
        r = results[key]
        print(f"  {label:<20} {r['wall_ns'] / 1000:8.1f} µs | {r['thread_cpu_ns'] / 1000:8.1f} µs{suffix}")

    row("bare call", "bare_call")
    row("plain OTel span", "otel_span", "  (baseline)")
    for mode, ratio in results["ratio_to_otel_span"].items():
        row(f"provtrace {mode}", f"provtrace_{mode}", f"  x{ratio['wall']} | x{ratio['calling_thread_cpu']}")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()

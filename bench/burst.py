"""End to end: a burst of decisions through the real OpenTelemetry Collector, provtrace next to
stock OpenTelemetry, counted by span id on arrival.

The collector (with Jaeger behind it) is started on free loopback ports. Each side runs in a
worker process of its own: stock OTel with the SDK's defaults (``BatchSpanProcessor``, the
upstream OTLP/HTTP protobuf exporter), provtrace with its whole pipeline (signed seals, fsynced
spool, OTLP/HTTP). Each produces DECISIONS decisions of eight tool calls (10 string attributes
each) as fast as it can; the clock stops when its exporter reports everything handed over
(``force_flush``; provtrace's returns once the collector acknowledged every segment). Then the
collector's archive is read and every produced span id looked up: delivered is the fraction that
arrived. Also reported: the client's CPU time per produced span (every thread of the worker).

    python -m bench burst
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import save
from bench.overhead import ARGS, ATTRS, work

DECISIONS = 2500
STEPS = 8
SIDES = ("otel", "provtrace")


def _otel(endpoint: str) -> list[str]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import format_span_id

    provider = TracerProvider(resource=Resource.create({"service.name": "burst-otel"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    tracer = provider.get_tracer("bench")
    produced: list[str] = []
    for _ in range(DECISIONS):
        with tracer.start_as_current_span("decision burst") as root:
            produced.append(format_span_id(root.get_span_context().span_id))
            for _ in range(STEPS):
                with tracer.start_as_current_span("execute_tool lookup", attributes=ATTRS) as span:
                    work(**ARGS)
                    produced.append(format_span_id(span.get_span_context().span_id))
    provider.force_flush(timeout_millis=600_000)
    provider.shutdown()
    return produced


def _provtrace(endpoint: str, home: Path) -> list[str]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    import provtrace

    handle = provtrace.configure(
        service_name="burst-provtrace",
        endpoint=endpoint,
        spool_dir=home / "spool",
        quarantine_dir=home / "quarantine",
        signing_key=Ed25519PrivateKey.generate(),
        heartbeat_interval=3600,
    )
    produced: list[str] = []
    for _ in range(DECISIONS):
        with provtrace.decision("burst", trigger="bench", actor="bench") as decision:
            produced.append(decision.span_id)
            for _ in range(STEPS):
                with provtrace.tool_call("lookup", attributes=ATTRS) as tool:
                    tool.record_input(ARGS)
                    tool.record_output(work(**ARGS))
                    produced.append(tool.span_id)
    if not handle.force_flush(timeout_s=600):
        raise RuntimeError("provtrace did not deliver within 600 s")
    handle.shutdown(timeout_s=60)
    return produced


def worker(side: str, endpoint: str, out: Path) -> None:
    start, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as home:
        produced = _otel(endpoint) if side == "otel" else _provtrace(endpoint, Path(home))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    out.write_text(json.dumps({"wall_s": wall, "cpu_s": cpu, "produced": produced}))


def arrived(archive_dir: Path) -> set[str]:
    """Span ids in the collector's archive (the live file and any rotated beside it)."""
    ids: set[str] = set()
    for path in sorted(archive_dir.glob("*")):
        if not path.is_file():
            continue
        for line in path.read_bytes().splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                continue  # a line being written
            for resource in data.get("resourceSpans", []):
                for scope in resource.get("scopeSpans", []):
                    ids.update(span.get("spanId", "") for span in scope.get("spans", []))
    return ids


def settled(archive_dir: Path, produced: set[str], timeout_s: float = 60.0) -> set[str]:
    """What arrived, once the archive stopped growing (or everything is there): the collector
    writes its file in batches."""
    deadline, last = time.monotonic() + timeout_s, -1
    while True:
        found = arrived(archive_dir) & produced
        if len(found) == len(produced) or len(found) == last or time.monotonic() > deadline:
            return found
        last = len(found)
        time.sleep(2.0)  # bench only: waiting for the collector's file exporter to write


def run() -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import stack as stack_module  # scripts/stack.py, the project's stack control

    results: dict[str, Any] = {"decisions": DECISIONS, "spans_per_decision": STEPS + 1}
    with tempfile.TemporaryDirectory() as home:
        stack = stack_module.Stack(Path(home) / "stack", stack_module.Ports.free())
        stack.start(timeout=120)
        try:
            for side in SIDES:
                out = Path(home) / f"{side}.json"
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.burst",
                        "--worker",
                        side,
                        stack.otlp_http_endpoint,
                        str(out),
                    ],
                    check=True,
                )
                data = json.loads(out.read_text())
                produced = set(data["produced"])
                found = settled(stack.archive_dir, produced)
                results[side] = {
                    "spans": len(produced),
                    "wall_s": data["wall_s"],
                    "spans_per_s": len(produced) / data["wall_s"],
                    "client_cpu_us_per_span": data["cpu_s"] / len(produced) * 1e6,
                    "delivered": len(found),
                    "delivered_fraction": len(found) / len(produced),
                    "delivered_per_s": len(found) / data["wall_s"],
                }
        finally:
            stack.stop()
    results["spans_per_s_ratio"] = results["provtrace"]["spans_per_s"] / results["otel"]["spans_per_s"]
    results["delivered_per_s_ratio"] = (
        results["provtrace"]["delivered_per_s"] / results["otel"]["delivered_per_s"]
    )
    return results


def main() -> None:
    results = run()
    print(f"burst of {DECISIONS} decisions x {STEPS} tool calls through the real collector")
    print(f"  {'':26} {'spans/s':>9} {'delivered':>10} {'delivered/s':>12} {'client CPU µs/span':>19}")
    for side, label in (("otel", "stock OTel (defaults)"), ("provtrace", "provtrace")):
        r = results[side]
        print(
            f"  {label:26} {r['spans_per_s']:9.0f} {r['delivered_fraction']:9.1%} "
            f"{r['delivered_per_s']:12.0f} {r['client_cpu_us_per_span']:19.0f}"
        )
    print(
        f"  provtrace / stock OTel: spans/s {results['spans_per_s_ratio']:.2f}, "
        f"delivered spans/s {results['delivered_per_s_ratio']:.2f}"
    )
    print(f"  written to {save('burst', results)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
    else:
        main()

"""Per-call cost of a provtrace step next to a plain OpenTelemetry span and the LLM tracing SDKs.

Every case records the same thing: a parent span (a decision, a workflow) holding eight tool calls,
each call a span with the same 10 string attributes around the same small function, through an
exporter that discards what it gets. Each case runs in its own worker process (the SDKs configure
process-wide tracer providers), the workers take turns round by round (so load on the machine hits
every case alike), and every timed round ends with ``force_flush``, so background work (the batch
processor's thread, provtrace's sealer, spool and archive) is inside the wall time. Reported per
tool call: medians and min-max over the rounds of wall time, CPU time of the calling thread, and
CPU time of the whole process; ratios are to the plain OTel span of the same run.

    python -m bench overhead
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from bench.common import save

ATTRS = {f"app.field_{i}": f"value number {i}" for i in range(10)}
ARGS: dict[str, Any] = {
    "sg": "sg-123",
    "port": 443,
    "cidr": "10.0.0.0/24",
    "note": "open for partner integration",
}
STEPS = 8
DECISIONS_PER_ROUND = 150
ROUNDS = 7
BASELINE = "otel"
REPLY = "@@bench "  # marks the worker's answers among whatever else the SDKs print
# case -> (label, needs the bench environment's peers)
CASES: dict[str, tuple[str, bool]] = {
    "otel": ("plain OTel span (BatchSpanProcessor)", False),
    "traceloop_task": ("Traceloop `@task`", True),
    "logfire_span": ("Logfire `span`", True),
    "logfire_instrument": ("`@logfire.instrument`", True),
    "provtrace_none": ("provtrace `@tool_call`, capture none", False),
    "provtrace_redacted": ("provtrace `@tool_call`, redacted (default)", False),
    "provtrace_with": ("provtrace `with tool_call`, redacted", False),
    "provtrace_off": ("provtrace redacted, completeness off", False),
    "provtrace_unsigned": ("provtrace redacted, unsigned seals", False),
}


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def work(sg: str, port: int, cidr: str, note: str) -> dict[str, Any]:
    return {"sg": sg, "rules": [{"port": port, "cidr": cidr}]}


# --- the cases, each set up in its own worker process ---------------------------------------------

Decision = Callable[[], None]
Flush = Callable[[], object]
# provtrace's counters after its last round, read when it has shut down
COUNTERS: list[Callable[[], dict[str, int]]] = []


def _otel() -> tuple[Decision, Flush]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    processor = BatchSpanProcessor(DropExporter())
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")

    def decision() -> None:
        with tracer.start_as_current_span("decision bench"):
            for _ in range(STEPS):
                with tracer.start_as_current_span("execute_tool lookup", attributes=ATTRS):
                    work(**ARGS)

    return decision, processor.force_flush


def _traceloop() -> tuple[Decision, Flush]:
    os.environ["TRACELOOP_TELEMETRY"] = "false"
    from opentelemetry import trace
    from traceloop.sdk import Traceloop
    from traceloop.sdk.decorators import task, workflow

    Traceloop.init(app_name="bench", exporter=DropExporter(), telemetry_enabled=False, instruments=set())

    @task(name="lookup")
    def lookup(**args: Any) -> dict[str, Any]:
        trace.get_current_span().set_attributes(ATTRS)
        return work(**args)

    @workflow(name="bench")
    def decision() -> None:
        for _ in range(STEPS):
            lookup(**ARGS)

    return decision, lambda: trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]


def _logfire(instrumented: bool) -> tuple[Decision, Flush]:
    import logfire
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    logfire.configure(
        send_to_logfire=False,
        console=False,
        metrics=False,
        inspect_arguments=False,
        additional_span_processors=[BatchSpanProcessor(DropExporter())],
    )

    @logfire.instrument("lookup")
    def lookup(sg: str, port: int, cidr: str, note: str) -> dict[str, Any]:
        trace.get_current_span().set_attributes(ATTRS)
        return work(sg, port, cidr, note)

    def decision() -> None:
        with logfire.span("decision bench"):
            for _ in range(STEPS):
                if instrumented:
                    lookup(**ARGS)
                else:
                    with logfire.span("lookup", **ATTRS):
                        work(**ARGS)

    return decision, logfire.force_flush


def _provtrace(case: str, home: Path) -> tuple[Decision, Flush]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    import provtrace

    handle = provtrace.configure(
        service_name="bench",
        archive_dir=home / "archive",
        spool_dir=home / "spool",
        quarantine_dir=home / "quarantine",
        capture_content="none" if case == "provtrace_none" else "redacted",
        completeness="off" if case == "provtrace_off" else "enforce",
        signing_key=None if case == "provtrace_unsigned" else Ed25519PrivateKey.generate(),
        heartbeat_interval=3600,
    )
    traced = provtrace.tool_call("lookup", attributes=ATTRS)(work)

    def decorated() -> None:
        with provtrace.decision("bench", trigger="bench", actor="bench"):
            for _ in range(STEPS):
                traced(**ARGS)

    def with_block() -> None:
        with provtrace.decision("bench", trigger="bench", actor="bench"):
            for _ in range(STEPS):
                with provtrace.tool_call("lookup", attributes=ATTRS) as tool:
                    tool.record_input(ARGS)
                    tool.record_output(work(**ARGS))

    def counters() -> dict[str, int]:
        handle.shutdown(timeout_s=300)
        return dict(handle.counters)

    COUNTERS.append(counters)

    def flush() -> None:
        if not handle.force_flush(timeout_s=300):
            raise RuntimeError("provtrace did not deliver within 300 s")

    return (with_block if case == "provtrace_with" else decorated), flush


def worker(case: str) -> None:
    """Set the case up, then run one timed round per ``run`` line on stdin, answering with its
    figures per tool call as one JSON line; ``quit`` checks provtrace's counters and ends."""
    with tempfile.TemporaryDirectory() as home:
        if case == "otel":
            decision, flush = _otel()
        elif case == "traceloop_task":
            decision, flush = _traceloop()
        elif case.startswith("logfire"):
            decision, flush = _logfire(case == "logfire_instrument")
        else:
            decision, flush = _provtrace(case, Path(home))
        for _ in range(20):
            decision()
        flush()
        print(f"{REPLY}ready", flush=True)
        for command in sys.stdin:
            if command.strip() != "run":
                break
            start, cpu, process = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
            for _ in range(DECISIONS_PER_ROUND):
                decision()
            flush()
            calls = DECISIONS_PER_ROUND * STEPS
            figures = {
                "wall_ns": (time.perf_counter_ns() - start) / calls,
                "thread_cpu_ns": (time.thread_time_ns() - cpu) / calls,
                "process_cpu_ns": (time.process_time_ns() - process) / calls,
            }
            print(REPLY + json.dumps(figures), flush=True)
        print(REPLY + json.dumps({"counters": COUNTERS[0]() if COUNTERS else {}}), flush=True)


# --- the parent: interleaved rounds --------------------------------------------------------------


def available(python: str) -> list[str]:
    peers = (
        subprocess.run(
            [python, "-c", "import traceloop.sdk, logfire"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if not peers:
        print("  (Traceloop and Logfire are not installed here: `make bench` runs in the bench environment)")
    return [case for case, (_, needs_peers) in CASES.items() if peers or not needs_peers]


def ask(process: subprocess.Popen[str], command: str) -> None:
    assert process.stdin is not None
    process.stdin.write(command + "\n")
    process.stdin.flush()


def reply(process: subprocess.Popen[str]) -> str:
    """The worker's next answer; the SDKs' own output to stdout (Traceloop's banner) is skipped."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(REPLY):
            return line[len(REPLY) :].strip()
    raise RuntimeError(f"a worker ended early (exit code {process.wait()})")


def run(cases: Sequence[str] | None = None, rounds: int = ROUNDS) -> dict[str, Any]:
    cases = list(cases or available(sys.executable))
    workers = {
        case: subprocess.Popen(
            [sys.executable, "-m", "bench.overhead", "--worker", case],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for case in cases
    }
    samples: dict[str, list[dict[str, float]]] = {case: [] for case in cases}
    try:
        for case, process in workers.items():
            assert process.stdout is not None
            if reply(process) != "ready":
                raise RuntimeError(f"worker {case} did not start")
        for _ in range(rounds):
            for case, process in workers.items():
                ask(process, "run")
                samples[case].append(json.loads(reply(process)))
        checks = {}
        for case, process in workers.items():
            ask(process, "quit")
            counters = json.loads(reply(process))["counters"]
            if counters:
                checks[case] = counters
            process.wait(timeout=300)
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
    return summarise(samples, checks)


def summarise(samples: dict[str, list[dict[str, float]]], checks: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {"steps_per_decision": STEPS, "decisions_per_round": DECISIONS_PER_ROUND}
    cases: dict[str, Any] = {}
    for case, rounds in samples.items():
        cases[case] = {"label": CASES[case][0], "rounds": len(rounds)}
        for key in ("wall_ns", "thread_cpu_ns", "process_cpu_ns"):
            values = [r[key] for r in rounds]
            cases[case][key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    base = cases[BASELINE]
    for figures in cases.values():
        figures["ratio"] = {
            key: round(figures[key]["median"] / base[key]["median"], 2)
            for key in ("wall_ns", "thread_cpu_ns", "process_cpu_ns")
        }
    results["cases"] = cases
    results["provtrace_counters"] = checks
    return results


def print_table(results: dict[str, Any]) -> None:
    rounds = min(f["rounds"] for f in results["cases"].values())
    print(f"per tool call ({STEPS} per decision), medians of {rounds} interleaved rounds, min-max")
    heads = "".join(f" {name:>16} {'x':>6}" for name in ("wall µs", "thread CPU µs", "process CPU µs"))
    print(f"  {'case':44}{heads}")
    for figures in results["cases"].values():
        cells = []
        for key in ("wall_ns", "thread_cpu_ns", "process_cpu_ns"):
            f = figures[key]
            spread = f"{f['min'] / 1000:.0f}-{f['max'] / 1000:.0f}"
            cells.append(f"{f['median'] / 1000:6.1f} {spread:>9} {figures['ratio'][key]:6.2f}")
        print(f"  {figures['label']:44} " + " ".join(cells))


def main() -> None:
    results = run()
    print_table(results)
    print(f"  written to {save('overhead', results)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2])
    else:
        main()

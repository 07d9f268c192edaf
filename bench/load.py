"""Does the sealer keep up under load, and what latency does a step add?

Producers run decisions of eight ``tool_call`` steps through the whole pipeline (Ed25519-signed
seals, fsynced spool, embedded archive): first 8 threads, then 8 threads plus 200 asyncio tasks
(on one event loop in a ninth thread). Each tool does 1 ms of I/O (a sleep), as real tools wait
on something; the latency a step *adds* is the call's wall time around the decorated function
minus the function's own time measured inside it, so it holds the span start, the content
capture and the span end on the caller's thread and every wait for the interpreter lock that
they cause. Sampled every 0.5 s: segments queued for the sealer and spans buffered in the
processor (the backlog); after the producers stop, the time until everything was delivered.

    python -m bench load
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import provtrace
from bench.common import save
from bench.overhead import ARGS, ATTRS

THREADS = 8
TASKS = 200
SECONDS = 15.0
IO_S = 0.001
STEPS = 8


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def lookup(sg: str, port: int, cidr: str, note: str) -> dict[str, Any]:
    inner = time.perf_counter_ns()
    time.sleep(IO_S)
    return {"sg": sg, "rules": [{"port": port, "cidr": cidr}], "inner": time.perf_counter_ns() - inner}


async def alookup(sg: str, port: int, cidr: str, note: str) -> dict[str, Any]:
    inner = time.perf_counter_ns()
    await asyncio.sleep(IO_S)
    return {"sg": sg, "rules": [{"port": port, "cidr": cidr}], "inner": time.perf_counter_ns() - inner}


class Load:
    """The producers, recording with provtrace (``handle``) or with plain OTel spans (``tracer``:
    the same load through the SDK alone, the floor of the latency spread)."""

    def __init__(self, handle: Any = None, tracer: Any = None) -> None:
        self.handle = handle
        self.tracer = tracer
        self.added_ns: list[int] = []  # list.append is atomic under the GIL
        self.decisions = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        if tracer is None:
            self.lookup = provtrace.tool_call("lookup", attributes=ATTRS)(lookup)
            self.alookup = provtrace.tool_call("lookup", attributes=ATTRS)(alookup)
        else:

            def traced(**args: Any) -> dict[str, Any]:
                with tracer.start_as_current_span("execute_tool lookup", attributes=ATTRS):
                    return lookup(**args)

            async def atraced(**args: Any) -> dict[str, Any]:
                with tracer.start_as_current_span("execute_tool lookup", attributes=ATTRS):
                    return await alookup(**args)

            self.lookup, self.alookup = traced, atraced

    def decision(self) -> Any:
        if self.tracer is not None:
            return self.tracer.start_as_current_span("decision load")
        return provtrace.decision("load", trigger="bench", actor="bench")

    def thread_producer(self) -> None:
        while not self.stop.is_set():
            with self.decision():
                for _ in range(STEPS):
                    outer = time.perf_counter_ns()
                    result = self.lookup(**ARGS)
                    self.added_ns.append(time.perf_counter_ns() - outer - result["inner"])
            with self.lock:
                self.decisions += 1

    async def task_producer(self) -> None:
        while not self.stop.is_set():
            with self.decision():
                for _ in range(STEPS):
                    outer = time.perf_counter_ns()
                    result = await self.alookup(**ARGS)
                    self.added_ns.append(time.perf_counter_ns() - outer - result["inner"])
            with self.lock:
                self.decisions += 1

    def event_loop(self) -> None:
        async def main() -> None:
            await asyncio.gather(*(self.task_producer() for _ in range(TASKS)))

        asyncio.run(main())

    def backlog(self) -> tuple[int, int]:
        if self.handle is None:
            return 0, 0
        pipeline = self.handle.pipeline
        return pipeline._queue.qsize(), pipeline.processor.buffered_spans


def run_otel(tasks: bool) -> dict[str, Any]:
    """The same producers with plain OTel spans (BatchSpanProcessor, an exporter that drops)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from bench.overhead import DropExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=1_000_000))
    load = Load(tracer=provider.get_tracer("bench"))
    start, cpu = time.perf_counter(), time.process_time()
    _produce(load, tasks)
    produced_s = time.perf_counter() - start
    provider.force_flush()
    cpu_share = (time.process_time() - cpu) / (time.perf_counter() - start)
    provider.shutdown()
    added = [ns / 1000 for ns in load.added_ns]
    p50, p99 = quantile(added, 0.5), quantile(added, 0.99)
    return {
        "producers": f"plain OTel, {THREADS} threads" + (f" + {TASKS} asyncio tasks" if tasks else ""),
        "spans_per_s": load.decisions * (STEPS + 1) / produced_s,
        "process_cpu_cores": cpu_share,
        "step_added_us": {"p50": p50, "p99": p99, "p99_over_p50": p99 / p50 if p50 else 0.0},
    }


def _produce(load: Load, tasks: bool) -> list[tuple[float, int, int]]:
    """Run the producers for SECONDS, sampling the backlog; returns the samples."""
    workers = [threading.Thread(target=load.thread_producer) for _ in range(THREADS)]
    if tasks:
        workers.append(threading.Thread(target=load.event_loop))
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    samples: list[tuple[float, int, int]] = []
    while time.perf_counter() - start < SECONDS:
        time.sleep(0.5)
        samples.append((round(time.perf_counter() - start, 1), *load.backlog()))
    load.stop.set()
    for worker in workers:
        worker.join()
    return samples


def run_load(tasks: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        handle = provtrace.configure(
            service_name="bench",
            archive_dir=Path(home) / "archive",
            spool_dir=Path(home) / "spool",
            quarantine_dir=Path(home) / "quarantine",
            signing_key=Ed25519PrivateKey.generate(),
            heartbeat_interval=3600,
        )
        load = Load(handle)
        start, cpu = time.perf_counter(), time.process_time()
        samples = _produce(load, tasks)
        produced_s = time.perf_counter() - start
        delivered = handle.force_flush(timeout_s=600)
        drained_s = time.perf_counter() - start - produced_s
        cpu_share = (time.process_time() - cpu) / (time.perf_counter() - start)
        counters = handle.counters
        handle.shutdown(timeout_s=120)
    spans = load.decisions * (STEPS + 1)
    added = [ns / 1000 for ns in load.added_ns]
    p50, p99 = quantile(added, 0.5), quantile(added, 0.99)
    half = len(samples) // 2
    return {
        "producers": f"{THREADS} threads" + (f" + {TASKS} asyncio tasks" if tasks else ""),
        "decisions": load.decisions,
        "spans": spans,
        "spans_per_s": spans / (produced_s + drained_s),
        "produced_spans_per_s": spans / produced_s,
        "drain_s_after_load": drained_s,
        "process_cpu_cores": cpu_share,
        "all_delivered": delivered,
        "spans_lost": counters["spans_lost"],
        "segments_delivered": counters["segments_delivered"],
        "step_added_us": {"p50": p50, "p99": p99, "p99_over_p50": p99 / p50 if p50 else 0.0},
        "backlog_samples": [{"t_s": t, "queued_segments": q, "buffered_spans": b} for t, q, b in samples],
        "queued_segments_first_half_max": max((q for _, q, _ in samples[:half]), default=0),
        "queued_segments_second_half_max": max((q for _, q, _ in samples[half:]), default=0),
        "queued_segments_median": statistics.median(q for _, q, _ in samples) if samples else 0,
    }


def run() -> dict[str, Any]:
    return {
        "threads": run_load(tasks=False),
        "threads_and_tasks": run_load(tasks=True),
        "otel_threads": run_otel(tasks=False),
        "otel_threads_and_tasks": run_otel(tasks=True),
    }


def main() -> None:
    results = run()
    print(f"load: decisions of {STEPS} tool calls with {IO_S * 1000:.0f} ms of I/O each, {SECONDS:.0f} s")
    print(
        f"  {'producers':46} {'spans/s':>8} {'cores':>6} {'drain s':>8} {'queued max 1st/2nd half':>24} "
        f"{'added p50 µs':>13} {'p99 µs':>8} {'p99/p50':>8} {'delivered':>9}"
    )
    for r in results.values():
        added = r["step_added_us"]
        if "drain_s_after_load" in r:
            halves = f"{r['queued_segments_first_half_max']}/{r['queued_segments_second_half_max']}"
            drain = f"{r['drain_s_after_load']:8.2f}"
            delivered = "all" if r["all_delivered"] and not r["spans_lost"] else "NO"
        else:
            halves, drain, delivered = "-", f"{'-':>8}", "-"
        rate, cores = r["spans_per_s"], r["process_cpu_cores"]
        print(
            f"  {r['producers']:46} {rate:8.0f} {cores:6.2f} {drain} {halves:>24} "
            f"{added['p50']:13.0f} {added['p99']:8.0f} {added['p99_over_p50']:8.2f} {delivered:>9}"
        )
    print(f"  written to {save('load', results)}")


if __name__ == "__main__":
    main()

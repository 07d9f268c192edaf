"""Per-call cost of the OpenAI instrumentation: ``chat.completions.create`` with the real client
against the local model server (examples/llm_server.py, in a process of its own, loopback HTTP),
instrumented and not, side by side in one agent process.

Both variants run the same agent-shaped loop: decisions of ten calls each, provtrace configured
with its whole pipeline (completeness check, seal, spool, archive) and the default capture mode
(``redacted``). Rounds alternate between the two so that drift on the machine hits both alike. Per
call, plain and streamed: the median over rounds of the mean wall time and of the calling
thread's CPU time (which leaves out provtrace's background threads), their ratios, and the
difference (what the instrumentation adds to one call).
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import provtrace
from bench.common import save

SERVER = Path(__file__).resolve().parents[1] / "examples" / "llm_server.py"

CALLS_PER_DECISION = 10
DECISIONS_PER_ROUND = 20
ROUNDS = 7
MESSAGES = [
    {"role": "system", "content": "You are a cautious security agent."},
    {"role": "user", "content": "Alert INC-4711: partner 10.0.0.0/24 cannot reach the API on 443. What now?"},
]


@contextlib.contextmanager
def model_server() -> Iterator[str]:
    """The local model server in its own process (so it takes no time from the agent's); its URL."""
    process = subprocess.Popen([sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "serving on URL ..."
        yield line.split()[2]
    finally:
        process.terminate()
        process.wait(timeout=10)


def per_call_ns(run_decision: Callable[[], None]) -> tuple[float, float]:
    """Mean wall time and calling-thread CPU time per call over one round."""
    start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
    for _ in range(DECISIONS_PER_ROUND):
        run_decision()
    calls = DECISIONS_PER_ROUND * CALLS_PER_DECISION
    return (time.perf_counter_ns() - start) / calls, (time.thread_time_ns() - start_cpu) / calls


def run() -> dict[str, Any]:
    import openai
    from provtrace_instrumentation_openai import OpenAIInstrumentor

    results: dict[str, Any] = {"calls_per_decision": CALLS_PER_DECISION, "rounds": ROUNDS}
    with tempfile.TemporaryDirectory() as home, model_server() as url:
        handle = provtrace.configure(
            service_name="bench",
            archive_dir=Path(home) / "archive",
            spool_dir=Path(home) / "spool",
            quarantine_dir=Path(home) / "quarantine",
        )
        client = openai.OpenAI(base_url=url + "/v1", api_key="bench", max_retries=0)

        def plain() -> None:
            with provtrace.decision("bench", trigger="bench", actor="bench"):
                for _ in range(CALLS_PER_DECISION):
                    client.chat.completions.create(model="fake-gpt", messages=MESSAGES)  # type: ignore[arg-type]

        def streamed() -> None:
            with provtrace.decision("bench", trigger="bench", actor="bench"):
                for _ in range(CALLS_PER_DECISION):
                    stream = client.chat.completions.create(model="fake-gpt", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
                    for _chunk in stream:
                        pass

        instrumentor = OpenAIInstrumentor()
        for name, body in (("plain", plain), ("streamed", streamed)):
            body()  # warm up: connections, imports, caches
            timings: dict[str, list[tuple[float, float]]] = {"uninstrumented": [], "instrumented": []}
            for _ in range(ROUNDS):
                timings["uninstrumented"].append(per_call_ns(body))
                instrumentor.instrument()
                timings["instrumented"].append(per_call_ns(body))
                instrumentor.uninstrument()
            summary: dict[str, float] = {}
            for which, index in (("wall", 0), ("cpu", 1)):
                bare = statistics.median(t[index] for t in timings["uninstrumented"])
                traced = statistics.median(t[index] for t in timings["instrumented"])
                summary[f"{which}_uninstrumented_us"] = round(bare / 1000, 1)
                summary[f"{which}_instrumented_us"] = round(traced / 1000, 1)
                summary[f"{which}_added_us"] = round((traced - bare) / 1000, 1)
                summary[f"{which}_ratio"] = round(traced / bare, 3)
            results[name] = summary
        delivered = handle.shutdown(timeout_s=300)
        counters = handle.counters
        results["check"] = {
            "delivered": delivered,
            "segments_complete": counters["segments_complete"],
            "segments_incomplete": counters["segments_incomplete"],
            "recording_errors": counters["recording_errors"],
        }
    return results


def main() -> None:
    results = run()
    path = save("llm_overhead", results)
    print("chat.completions.create against the local model server, per call (median of rounds):")
    for name in ("plain", "streamed"):
        r = results[name]
        for which, label in (("wall", "wall time"), ("cpu", "calling thread CPU")):
            print(
                f"  {name:<9} {label:<19} uninstrumented {r[f'{which}_uninstrumented_us']:8.1f} µs | "
                f"instrumented {r[f'{which}_instrumented_us']:8.1f} µs | +{r[f'{which}_added_us']:.1f} µs "
                f"(x{r[f'{which}_ratio']})"
            )
    print(f"  check: {results['check']}")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()

"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def per_call_ns(function: Callable[[], object], *, calls: int, rounds: int = 7) -> tuple[float, float]:
    """Medians over ``rounds`` of the mean time per call, in nanoseconds: wall time (includes any
    background threads competing for the interpreter) and CPU time of the calling thread only."""
    for _ in range(min(calls, 200)):
        function()
    wall, cpu = [], []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        for _ in range(calls):
            function()
        cpu.append((time.thread_time_ns() - start_cpu) / calls)
        wall.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(wall), statistics.median(cpu)


def save(name: str, data: dict[str, object]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path

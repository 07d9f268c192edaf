"""Where the time goes: the agent's thread and the sealer's, profiled with per-thread CPU clocks.

The agent's thread runs decisions of eight redacted ``tool_call`` steps (the overhead case);
cProfile with ``time.thread_time`` as its clock counts only that thread's CPU (a wall clock would
charge it with every wait for the interpreter lock). The sealer thread's work (``_seal_one`` and
``_persist``) is profiled the same way, on its own thread. With pyinstrument installed (the bench
environment), the agent's side is also shown as pyinstrument's call tree. Text reports go to
bench/results/profile-*.txt.

    python -m bench profile
"""

from __future__ import annotations

import cProfile
import io
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import provtrace
from bench.common import RESULTS
from bench.overhead import ARGS, ATTRS, work
from provtrace import pipeline

DECISIONS = 400
STEPS = 8


def _on_thread_clock(profile: cProfile.Profile, function: Callable[..., Any]) -> Callable[..., Any]:
    def profiled(*args: Any, **kwargs: Any) -> Any:
        profile.enable()
        try:
            return function(*args, **kwargs)
        finally:
            profile.disable()

    return profiled


def _report(profile: cProfile.Profile, title: str, lines: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumtime").print_stats(lines)
    return f"== {title}\n{out.getvalue()}"


def run() -> dict[str, str]:
    sealer = cProfile.Profile(time.thread_time)
    pipeline.Pipeline._seal_one = _on_thread_clock(sealer, pipeline.Pipeline._seal_one)  # type: ignore[method-assign]
    pipeline.Pipeline._persist = _on_thread_clock(sealer, pipeline.Pipeline._persist)  # type: ignore[method-assign]
    reports: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as home:
        handle = provtrace.configure(
            service_name="bench",
            archive_dir=Path(home) / "archive",
            spool_dir=Path(home) / "spool",
            quarantine_dir=Path(home) / "quarantine",
            signing_key=Ed25519PrivateKey.generate(),
            heartbeat_interval=3600,
        )
        traced = provtrace.tool_call("lookup", attributes=ATTRS)(work)

        def decisions() -> None:
            for _ in range(DECISIONS):
                with provtrace.decision("bench", trigger="bench", actor="bench"):
                    for _ in range(STEPS):
                        traced(**ARGS)

        agent = cProfile.Profile(time.thread_time)
        agent.runcall(decisions)
        handle.force_flush(timeout_s=300)
        reports["agent"] = _report(
            agent, f"agent thread, {DECISIONS} decisions x {STEPS} redacted tool calls"
        )
        reports["sealer"] = _report(sealer, f"sealer thread, the same {DECISIONS} segments")
        try:
            from pyinstrument import Profiler
        except ImportError:
            pass
        else:
            profiler = Profiler(interval=0.0002)
            profiler.start()
            decisions()
            profiler.stop()
            reports["agent-pyinstrument"] = profiler.output_text(unicode=True, show_all=False)
        handle.shutdown(timeout_s=120)
    return reports


def main() -> None:
    reports = run()
    RESULTS.mkdir(exist_ok=True)
    for name, text in reports.items():
        path = RESULTS / f"profile-{name}.txt"
        path.write_text(text)
        print("\n".join(text.splitlines()[:45]))
        print(f"  written to {path}")


if __name__ == "__main__":
    main()

"""Start-up cost: ``import provtrace`` and import + ``configure()`` (embedded archive) next to
``import opentelemetry.sdk.trace``, each in a fresh interpreter, interleaved, medians of rounds.

    python -m bench imports
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile

from bench.common import save

CASES = {
    "import opentelemetry.sdk.trace": "import opentelemetry.sdk.trace",
    "import provtrace": "import provtrace",
    "import provtrace + configure()": (
        "import provtrace; h = provtrace.configure(archive_dir=HOME + '/a', spool_dir=HOME + '/s', "
        "quarantine_dir=HOME + '/q', heartbeat_interval=3600)"
    ),
}
ROUNDS = 15


def _environment(home: str) -> dict[str, str]:
    """Nothing of this shell's settings but the path to this checkout's sources (``make bench``
    sets it: the bench environment may have been made by another checkout)."""
    environment = {"PROVTRACE_HOME": home}
    if os.environ.get("PYTHONPATH"):
        environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return environment


def _seconds(statement: str, home: str) -> float:
    code = (
        "import time, os\n"
        f"HOME = {home!r}\n"
        "t = time.perf_counter()\n"
        f"{statement}\n"
        "print(time.perf_counter() - t, flush=True)\n"
        "os._exit(0)\n"  # leave without the exit handlers (shutdown is not start-up cost)
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_environment(home)
    )
    return float(result.stdout.strip())


def main() -> None:
    timings: dict[str, list[float]] = {name: [] for name in CASES}
    with tempfile.TemporaryDirectory() as home:
        for _ in range(ROUNDS):  # interleaved, so load on the machine hits every case alike
            for name, statement in CASES.items():
                timings[name].append(_seconds(statement, home))
    base = statistics.median(timings["import opentelemetry.sdk.trace"])
    print(f"{'case':34} {'median ms':>10} {'min-max ms':>14} {'x OTel SDK':>11}")
    rows = {}
    for name, values in timings.items():
        median = statistics.median(values)
        rows[name] = {"median_ms": median * 1000, "min_ms": min(values) * 1000, "max_ms": max(values) * 1000}
        print(
            f"{name:34} {median * 1000:10.1f} {min(values) * 1000:6.1f}-{max(values) * 1000:<7.1f} "
            f"{median / base:11.2f}"
        )
    save("imports", rows)


if __name__ == "__main__":
    main()

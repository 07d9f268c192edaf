"""How long ``provtrace verify --stream`` takes on 10,000 spans, next to the floor.

The archive is made once by the real pipeline (1,250 reference-scenario decisions of eight spans,
Ed25519-signed, one seal and checkpoint per decision). The floor is what no verifier can avoid:
parsing every line and one SHA-256 pass over the same bytes. The verify figure is the command's
work in-process (reading, every digest, the Merkle log, checkpoints, every signature, the chain);
the command-line figure adds starting the interpreter and importing provtrace.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

DECISIONS = 1250
ROUNDS = 5


def make_archive(home: Path) -> tuple[Path, Path]:
    import provtrace
    from provtrace.integrity import write_key_pair
    from tests.scenario import reference_scenario

    write_key_pair(home / "agent.key", home / "agent.pub")
    handle = provtrace.configure(
        service_name="bench",
        archive_dir=home / "archive",
        spool_dir=home / "spool",
        quarantine_dir=home / "quarantine",
        signing_key=home / "agent.key",
        digest_key=home / "digest.key",
        heartbeat_interval=3600,
        spool_fsync=False,
    )
    for _ in range(DECISIONS):
        reference_scenario()
    handle.shutdown(timeout_s=120)
    return home / "archive", home / "agent.pub"


def floor(archive: Path) -> None:
    for path in sorted(archive.rglob("*.jsonl")):
        data = path.read_bytes()
        hashlib.sha256(data).digest()
        for line in data.splitlines():
            orjson.loads(line)


def verify(archive: Path, public: Path) -> Any:
    """``provtrace verify --stream`` in process, its arguments parsed by the CLI's own parser
    (so a new option of the command can never be missing here)."""
    from provtrace.cli.main import build_parser
    from provtrace.cli.verify import run

    argv = ["verify", "--stream", "--archive", str(archive), "--public-key", str(public), "--format", "json"]
    return run(build_parser().parse_args(argv))


def timed(function: Any) -> float:
    return timed_both(function)[0]


def timed_both(function: Any) -> tuple[float, float]:
    """Medians of wall time and of CPU time (this process and its children: the signature
    checks run in a forked child). On a machine shared with other work, CPU time is steadier."""
    walls, cpus = [], []
    for _ in range(ROUNDS):
        start, before = time.perf_counter(), os.times()
        function()
        after = os.times()
        walls.append(time.perf_counter() - start)
        spent = after.user + after.system + after.children_user + after.children_system
        cpus.append(spent - before.user - before.system - before.children_user - before.children_system)
    return statistics.median(walls), statistics.median(cpus)


def run() -> dict[str, Any]:
    import contextlib
    import io

    with tempfile.TemporaryDirectory() as tmp:
        archive, public = make_archive(Path(tmp))
        size = sum(p.stat().st_size for p in archive.rglob("*.jsonl"))
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert verify(archive, public) == 0, out.getvalue()
            verify_s, verify_cpu_s = timed_both(lambda: verify(archive, public))
        floor_s, floor_cpu_s = timed_both(lambda: floor(archive))
        command = [sys.executable, "-m", "provtrace.cli", "verify", "--stream", "--archive", str(archive)]
        cli_s = timed(
            lambda: subprocess.run([*command, "--public-key", str(public)], check=True, capture_output=True)
        )
    return {
        "spans": DECISIONS * 8,
        "archive_bytes": size,
        "floor_s": floor_s,
        "verify_s": verify_s,
        "cli_s": cli_s,
        "verify_vs_floor": verify_s / floor_s,
        "floor_cpu_s": floor_cpu_s,
        "verify_cpu_s": verify_cpu_s,
    }


def main() -> None:
    from bench.common import save

    results = run()
    path = save("verify", results)
    megabytes = results["archive_bytes"] / 1e6
    print(f"verify --stream of {results['spans']} spans ({megabytes:.1f} MB), median of {ROUNDS}")
    print(f"  floor: parse every line + SHA-256 of the bytes  {results['floor_s']:.3f} s")
    ratio = results["verify_vs_floor"]
    print(
        f"  verify --stream (in process)                   {results['verify_s']:.3f} s  ({ratio:.1f}x floor)"
    )
    print(f"  provtrace verify --stream (command line)       {results['cli_s']:.3f} s")
    print(f"  CPU time: floor {results['floor_cpu_s']:.3f} s, verify {results['verify_cpu_s']:.3f} s")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()

"""bench/verify.py drives ``provtrace verify`` in process: it must keep working as the command
gains options (``make bench`` broke once when ``--spool`` was added and the bench built its own
argument namespace)."""

from __future__ import annotations

from pathlib import Path

from provtrace.testing import run_python

ROOT = Path(__file__).resolve().parents[2]


def test_the_verify_benchmark_verifies_a_small_archive_it_made(tmp_path: Path) -> None:
    code = f"""
import contextlib, io, json, sys
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
import bench.verify as bench
bench.DECISIONS = 3
archive, public = bench.make_archive(Path({str(tmp_path / "bench")!r}))
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = bench.verify(archive, public)
report = json.loads(out.getvalue())
print(code, report["ok"], report["spans"] if "spans" in report else "")
"""
    (tmp_path / "bench").mkdir()
    result = run_python(code, tmp_path)
    assert result.stdout.split()[:2] == ["0", "True"], result.stdout

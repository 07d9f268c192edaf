"""Running a test's program in a fresh interpreter: what an agent started on its own sees
(``provtrace.instrument()``, ``opentelemetry-instrument``), with provtrace's home in the test's
temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

PROGRAM_TIMEOUT_S = 120


def run_python(
    code: str, tmp_path: Path, *, env: Mapping[str, str] | None = None, command: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as ``tmp_path / "program.py"`` with this interpreter (or ``command``, e.g. a
    launcher followed by it), provtrace's home under ``tmp_path / "home"`` and its archive in
    ``tmp_path / "archive"``, and only PATH and ``env`` besides; fails the test on a non-zero exit."""
    script = tmp_path / "program.py"
    script.write_text(code, encoding="utf-8")
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PROVTRACE_HOME": str(tmp_path / "home"),
        "PROVTRACE_ARCHIVE_DIR": str(tmp_path / "archive"),
        **(env or {}),
    }
    result = subprocess.run(  # noqa: S603 - the test's own program
        [*(command or [sys.executable]), str(script)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=PROGRAM_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result

"""``provtrace.instrument()`` finds the instrumentation, next to another provtrace instrumentation
(botocore's, which these tests' environment holds for the two-store canary)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_provtrace_instrument_lists_it() -> None:
    code = "import provtrace, json; print(json.dumps(provtrace.instrument()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)  # noqa: S603
    assert {"botocore", "hvac"} <= set(json.loads(out.stdout.strip().splitlines()[-1]))

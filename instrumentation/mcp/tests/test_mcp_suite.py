"""mcp's own server logging tests, from the sdist of the installed mcp, pass with provtrace
configured and every server they build instrumented: what a server serves to a plain client is
complete evidence, and provtrace logs nothing into the application's logs meanwhile."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mcp_harness import RUN_TIMEOUT_S, SUITE_ENV

from provtrace import conventions as c
from provtrace.testing import Archive

PLUGIN = Path(__file__).resolve().parent / "mcp_suite"
# The suite's tests about logging: the MCP logging protocol, a tool's stdlib logging, and the
# server's own log lines for tool errors and crashes (which assert that nothing else is logged).
LOGGING_TESTS = (
    "tests/interaction/lowlevel/test_logging.py",
    "tests/docs_src/test_logging.py",
    "tests/docs_src/test_handling_errors.py",
    "tests/docs_src/test_troubleshooting.py",
    "tests/server/mcpserver/test_server.py",
)


@pytest.fixture
def suite() -> Path:
    """mcp's sources with its tests; this environment has their dependencies."""
    root = os.environ.get(SUITE_ENV)
    if not root:
        pytest.skip(f"{SUITE_ENV} is not set: `nox -s mcp_suite` provides mcp's tests and their dependencies")
    return Path(root)


def test_mcps_own_server_logging_tests_pass_with_provtrace_on(suite: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PROVTRACE_HOME": str(tmp_path / "provtrace"),
        "PROVTRACE_HEARTBEAT_INTERVAL": "3600",
        "PROVTRACE_SUITE_REPORT": str(report),
        "PYTHONPATH": str(PLUGIN),
    }
    argv = [sys.executable, "-m", "pytest", "-p", "provtrace_on", "-p", "no:cacheprovider"]
    options = ["-o", "addopts=-p anyio", "-q", "--no-header", "-o", "log_cli=false"]
    result = subprocess.run(  # noqa: S603 - pytest on mcp's own tests
        [*argv, *options, *LOGGING_TESTS],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None, summary
    assert int(passed.group(1)) > 200, summary  # the suite ran, not an empty selection
    assert not re.search(r"failed|error", summary), summary
    outcome = json.loads(report.read_text(encoding="utf-8"))
    assert outcome["logged"] == []
    assert outcome["delivered"] is True
    counters = outcome["counters"]
    assert counters["segments_incomplete"] == counters["segments_quarantined"] == 0
    assert counters["recording_errors"] == counters["spans_lost"] == 0
    records = Archive(tmp_path / "provtrace" / "archive").records()
    served = [r for r in records if r.step == c.STEP_TOOL_CALL]
    decisions = {r.span_id: r for r in records if r.step == c.STEP_DECISION}
    assert len(served) > 100  # provtrace really recorded what the suite's servers served
    assert {decisions[r.parent_span_id].attributes[c.DECISION_ID] for r in served} == {
        r.attributes[c.DECISION_ID] for r in served
    }

"""Fixtures for the MCP instrumentation's tests (the evidence stack comes from the repository's
root conftest)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mcp_harness import Python, mcp1_python  # noqa: E402 - needs the repository on the path

from tests.conftest import Recorded, make_recorded  # noqa: E402


@pytest.fixture(scope="session")
def mcp2() -> Python:
    return Python(sys.executable, 2, {}, "api")


@pytest.fixture(scope="session")
def mcp1() -> Python:
    return mcp1_python()


@pytest.fixture(params=[2, 1], ids=["mcp2", "mcp1"])
def line(request: pytest.FixtureRequest) -> Python:
    python: Python = request.getfixturevalue(f"mcp{request.param}")
    return python


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Recorded]:
    """provtrace with an in-memory view of its spans, and the instrumentation on."""
    from provtrace_instrumentation_mcp import MCPInstrumentor

    result = make_recorded(tmp_path)
    instrumentor = MCPInstrumentor()
    instrumentor.instrument()
    try:
        yield result
    finally:
        instrumentor.uninstrument()
        with contextlib.suppress(Exception):
            result.handle.shutdown(timeout_s=10)

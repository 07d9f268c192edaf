"""Fixtures for the MCP instrumentation's tests, on top of provtrace's pytest plugin (loaded by the
run's root: the repository's conftest.py, or ``-p provtrace.testing`` in this package's own
pytest settings when its tests run on their own).

One environment holds one mcp line: the tests run on the line installed here, and the nox
sessions (noxfile.py at the repository root) run them once per line, from the pinned requirement
files in requirements/."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from mcp_harness import PEER_ENV, Python
from provtrace_instrumentation_mcp import MCPInstrumentor, mcp_line

from provtrace.testing import Recorded, instrumented

LINE = mcp_line()


@pytest.fixture(scope="session")
def line() -> Python:
    """This interpreter and its mcp line; the apps turn the instrumentation on through
    provtrace.instrument() (the entry point of the installed package)."""
    assert LINE is not None, "no supported mcp line is installed"
    return Python(sys.executable, LINE, {}, "api")


@pytest.fixture(scope="session")
def mcp2(line: Python) -> Python:
    if line.line != 2:
        pytest.skip(f"needs mcp 2.x; this environment has mcp {line.line}.x")
    return line


@pytest.fixture(scope="session")
def peer(line: Python) -> Python:
    """An interpreter with the other mcp line (the nox session of one line names the other's)."""
    executable = os.environ.get(PEER_ENV)
    if not executable:
        pytest.skip(f"{PEER_ENV} names no interpreter with another mcp line (`nox -s mcp1` sets it)")
    return Python(executable, 2 if line.line == 1 else 1, {}, "api")


@pytest.fixture
def recorded(recorded: Recorded) -> Iterator[Recorded]:
    """provtrace with an in-memory view of its spans, and the instrumentation on."""
    with instrumented(MCPInstrumentor()):
        yield recorded

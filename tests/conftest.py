"""The SDK's own tests use the fixtures of provtrace's pytest plugin (``provtrace.testing``, loaded
by the repository's root conftest.py); the names below stay importable from here for the tests
that import them, and ``agent`` is the evidence-stack agent with its home in ``tmp_path``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provtrace.testing import Agent, Recorded, Stack, make_recorded
from tests.example_agent import example_run  # noqa: F401 - the session fixture of the example agent's evidence

__all__ = ["Recorded", "make_recorded"]


@pytest.fixture
def agent(evidence_stack: Stack, tmp_path: Path) -> Iterator[Agent]:
    result = Agent(evidence_stack, tmp_path)
    yield result
    result.handle.shutdown(timeout_s=60)

"""Fixtures for the Anthropic instrumentation's tests: the local model server and provtrace with
the instrumentation on (the shared pieces are in the repository's tests/llm_harness.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.llm_harness import Recorded, instrumented, server  # noqa: E402 - needs the repository on the path

__all__ = ["recorded", "server"]


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Recorded]:
    from provtrace_instrumentation_anthropic import AnthropicInstrumentor

    with instrumented(tmp_path, AnthropicInstrumentor()) as result:
        yield result

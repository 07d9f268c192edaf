"""Fixtures for the OpenAI instrumentation's tests, on top of provtrace's pytest plugin (loaded by
``-p provtrace.testing`` in this package's pytest settings): its ``model_server`` is the local
model server the real client talks to over HTTP, and ``recorded`` here has the instrumentation on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from provtrace_instrumentation_openai import OpenAIInstrumentor

from provtrace.testing import Recorded, instrumented


@pytest.fixture
def recorded(recorded: Recorded) -> Iterator[Recorded]:
    """provtrace with an in-memory view of its spans, and the instrumentation on."""
    with instrumented(OpenAIInstrumentor()):
        yield recorded

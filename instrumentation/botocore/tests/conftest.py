"""Fixtures for the botocore instrumentation's tests, on top of provtrace's pytest plugin (loaded
by ``-p provtrace.testing`` in this package's pytest settings): an AWS account on its real moto
server (moto_fixture), and provtrace with the instrumentation on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto_fixture import moto  # noqa: F401 - a fixture
from provtrace_instrumentation_botocore import BotocoreInstrumentor

from provtrace.testing import Recorded, instrumented


@pytest.fixture
def recorded(recorded: Recorded) -> Iterator[Recorded]:
    """provtrace with an in-memory view of its spans, and the instrumentation on."""
    with instrumented(BotocoreInstrumentor()):
        yield recorded

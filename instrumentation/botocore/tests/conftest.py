"""Fixtures for the botocore instrumentation's tests: a real moto server (moto_fixture) and
provtrace recording in memory with the instrumentation on."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from moto_fixture import moto, moto_server  # noqa: E402, F401 - fixtures

from provtrace.content import SECRETS  # noqa: E402
from provtrace.instrumentation import forget_written  # noqa: E402
from tests.conftest import Recorded, make_recorded  # noqa: E402


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Recorded]:
    from provtrace_instrumentation_botocore import BotocoreInstrumentor

    result = make_recorded(tmp_path)
    instrumentor = BotocoreInstrumentor()
    instrumentor.instrument()
    try:
        yield result
    finally:
        instrumentor.uninstrument()
        forget_written()
        with contextlib.suppress(Exception):
            result.handle.shutdown(timeout_s=10)


@pytest.fixture(autouse=True)
def _clean_secrets() -> Iterator[None]:
    yield
    SECRETS.clear()

"""Fixtures for the hvac instrumentation's tests: a real OpenBao dev server (openbao_fixture) and
provtrace recording in memory with the instrumentation on."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from openbao_fixture import approle, openbao  # noqa: E402, F401 - fixtures

from provtrace.instrumentation import forget_written  # noqa: E402
from tests.conftest import Recorded, make_recorded  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet_hvac() -> Iterator[None]:
    """hvac warns on every KV v2 read without raise_on_deleted_version; the tests pass it where
    they can, and the warning says nothing about provtrace."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="hvac")
        yield


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Recorded]:
    from provtrace_instrumentation_hvac import HvacInstrumentor

    result = make_recorded(tmp_path)
    instrumentor = HvacInstrumentor()
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
    from provtrace.content import SECRETS

    yield
    SECRETS.clear()

"""Fixtures for the hvac instrumentation's tests, on top of provtrace's pytest plugin (loaded by
``-p provtrace.testing`` in this package's pytest settings): its real OpenBao dev server, seeded
here with what the tests use (vault_seed), and provtrace with the instrumentation on."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from provtrace_instrumentation_hvac import HvacInstrumentor
from vault_seed import AppRole, agent_role, seed

from provtrace.testing import OpenBao, Recorded, instrumented


@pytest.fixture(autouse=True)
def _quiet_hvac() -> Iterator[None]:
    """hvac warns on every KV v2 read without raise_on_deleted_version; the tests pass it where
    they can, and the warning says nothing about provtrace."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="hvac")
        yield


@pytest.fixture(scope="session")
def openbao(openbao: OpenBao) -> OpenBao:
    """The plugin's OpenBao, with the tests' mounts, policy and AppRole."""
    seed(openbao)
    return openbao


@pytest.fixture(scope="session")
def approle(openbao: OpenBao) -> AppRole:
    return agent_role(openbao)


@pytest.fixture
def recorded(recorded: Recorded) -> Iterator[Recorded]:
    """provtrace with an in-memory view of its spans, and the instrumentation on."""
    with instrumented(HvacInstrumentor()):
        yield recorded

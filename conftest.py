"""Fixtures shared by every test tree: the real evidence stack is started once per session,
whichever tests (SDK or instrumentation) ask for it first."""

from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.integration.stack", "tests.integration.tsa", "tests.integration.openbao"]


@pytest.fixture(autouse=True, scope="session")
def _provtrace_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never write to the real ~/.local/share/provtrace (the default digest key lives there)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("PROVTRACE_HOME", str(tmp_path_factory.mktemp("provtrace-home")))
    yield
    patch.undo()

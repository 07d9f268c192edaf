"""Fixtures shared by every test tree: the real evidence stack is started once per session,
whichever tests (SDK or instrumentation) ask for it first."""

from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.integration.stack"]


@pytest.fixture(autouse=True, scope="session")
def _provtrace_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never write to the real ~/.local/share/provtrace (the default digest key lives there)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("PROVTRACE_HOME", str(tmp_path_factory.mktemp("provtrace-home")))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _fresh_violation_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts a fresh window of the violation log's rate limit: otherwise whether a
    test sees its own report depends on how many incomplete segments earlier tests logged in the
    last minute of the session."""
    from provtrace import violations

    monkeypatch.setattr(violations, "_limiter", violations._Limiter())

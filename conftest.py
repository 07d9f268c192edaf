"""Fixtures shared by every test tree: the real evidence stack is started once per session,
whichever tests (SDK or instrumentation) ask for it first."""

pytest_plugins = ["tests.integration.stack"]

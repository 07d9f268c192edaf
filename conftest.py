"""The root of the repository's test runs (SDK and instrumentations alike): provtrace's pytest
plugin, whose fixtures include the real evidence stack, started once per session whichever tests
ask for it first, and the repository's other real servers (a time-stamping authority, OpenBao)."""

pytest_plugins = ["provtrace.testing", "tests.integration.tsa", "tests.integration.openbao"]

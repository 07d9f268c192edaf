"""The root of the repository's own test run (tests/): provtrace's pytest plugin, whose fixtures
include the real evidence stack (started once per session, whichever tests ask for it first) and
OpenBao, and the repository's time-stamping authority. The instrumentation packages' tests run on
their own, from their own pytest settings (noxfile.py)."""

pytest_plugins = ["provtrace.testing", "tests.integration.tsa"]

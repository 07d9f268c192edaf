"""Bounded waiting (moved to provtrace.testing; importable from here for the tests that do)."""

from provtrace.testing import wait_for

__all__ = ["wait_for"]

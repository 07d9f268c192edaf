"""The reference scenario of DESIGN.md, as tests drive it (the example agent is in examples/); its
home is provtrace.testing.scenario, which the documentation runs too."""

from __future__ import annotations

from provtrace.testing.scenario import ANSWER, PROMPT, REQ, SECRET, reference_scenario

__all__ = ["ANSWER", "PROMPT", "REQ", "SECRET", "reference_scenario"]

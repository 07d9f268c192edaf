"""A misspelled keyword must be a type error, not only a runtime one (tests/unit/test_typing.py)."""

import provtrace

provtrace.policy_check("fw-change", verison="3")

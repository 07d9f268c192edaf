"""The evidence stack's helpers for the SDK's integration tests, now in provtrace.testing (its
``evidence_stack`` fixture starts the stack); importable from here for the tests that do."""

from __future__ import annotations

from pathlib import Path

from provtrace.testing import Agent, archived, jaeger_v1, jaeger_v3, wait_for, wait_for_spans
from provtrace.testing import stack as stack_module
from provtrace.testing.evidence import http_json

REPO = Path(__file__).resolve().parents[2]

__all__ = [
    "REPO",
    "Agent",
    "archived",
    "http_json",
    "jaeger_v1",
    "jaeger_v3",
    "stack_module",
    "wait_for",
    "wait_for_spans",
]

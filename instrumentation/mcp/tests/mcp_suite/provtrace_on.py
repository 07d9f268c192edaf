"""A pytest plugin (``-p provtrace_on``) that runs mcp's own test suite with provtrace on.

provtrace is configured from the environment (PROVTRACE_HOME) and the MCP instrumentation turned
on before any test imports a server, then the client side is unwrapped again: every server the
suite builds records what it serves, and its callers are plain MCP clients, as most callers of a
real server are. At the end it writes to PROVTRACE_SUITE_REPORT the pipeline's counters and every
record provtrace logged at WARNING or above, as the application's root logger saw them.
"""

from __future__ import annotations

import importlib
import json
import logging
import os

import pytest
from opentelemetry.instrumentation.utils import unwrap
from provtrace_instrumentation_mcp import TARGETS, MCPInstrumentor, mcp_line

import provtrace


class _ProvtraceRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("provtrace"):
            self.messages.append(f"{record.levelname} {record.name}: {record.getMessage()}")


_records = _ProvtraceRecords()
_handle: provtrace.Provtrace | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _handle  # noqa: PLW0603 - one configuration for the session
    logging.getLogger().addHandler(_records)
    _handle = provtrace.configure(service_name="mcp-suite")
    MCPInstrumentor().instrument()
    line = mcp_line()
    for target in TARGETS[line] if line is not None else ():
        if not target.module.startswith("mcp.server"):
            unwrap(*target.owner(importlib.import_module(target.module)))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _handle is None:
        return
    delivered = _handle.shutdown(timeout_s=30)
    report = {"counters": _handle.counters, "delivered": delivered, "logged": _records.messages}
    with open(os.environ["PROVTRACE_SUITE_REPORT"], "w", encoding="utf-8") as out:
        json.dump(report, out)

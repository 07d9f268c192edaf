"""What the test apps share: how they turn the instrumentation on, and their secrets."""

from __future__ import annotations

import os

import provtrace

SERVER_SECRET = "srvtok-Q8mZ3xL0pV7tN2wK"  # noqa: S105 - a test canary, fetched by the server
AGENT_SECRET = "agtok-R4nB9cX2vM6qT1yH"  # noqa: S105 - a test canary, fetched by the agent


def instrument() -> None:
    """MCP_TEST_INSTRUMENT: ``api`` (provtrace.instrument(), via the entry point), ``direct``
    (the instrumentor itself: the mcp 1.x environment has the sources on its path, not installed)
    or ``none`` (``opentelemetry-instrument`` already did it)."""
    how = os.environ.get("MCP_TEST_INSTRUMENT", "api")
    if how == "api":
        enabled = provtrace.instrument()
        if "mcp" not in enabled:
            raise RuntimeError(f"provtrace.instrument() did not enable mcp: {enabled}")
    elif how == "direct":
        from provtrace_instrumentation_mcp import MCPInstrumentor

        MCPInstrumentor().instrument()

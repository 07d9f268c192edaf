"""The MCP SDK lines this instrumentation supports (``opentelemetry-instrument`` checks them)."""

_instruments = ("mcp >= 1.30.0, < 3",)

"""The client line this instrumentation supports (`opentelemetry-instrument` checks it)."""

_instruments = ("anthropic >= 2.0.0, < 3",)

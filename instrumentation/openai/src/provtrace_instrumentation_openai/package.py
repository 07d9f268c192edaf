"""The client line this instrumentation supports (`opentelemetry-instrument` checks it)."""

_instruments = ("openai >= 3.0.0, < 4",)

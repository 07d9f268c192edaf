"""The hvac line this instrumentation supports (``opentelemetry-instrument`` checks it)."""

_instruments = ("hvac >= 2.0.0, < 3",)

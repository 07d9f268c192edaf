"""The botocore line this instrumentation supports (``opentelemetry-instrument`` checks it)."""

_instruments = ("botocore >= 1.33, < 2",)

"""Readers: evidence back from the archive or Jaeger, into the one span model."""

from provtrace.readers.base import EvidenceSource, TraceQuery

__all__ = ["EvidenceSource", "TraceQuery"]

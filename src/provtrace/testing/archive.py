"""Reading back what provtrace (or the collector's file exporter) wrote: OTLP JSON lines under one
directory, as the investigator's readers see them."""

from __future__ import annotations

from pathlib import Path

from provtrace import conventions as c
from provtrace.model import SpanRecord
from provtrace.readers.archive import ArchiveSource

EVIDENCE_RECORDS = (c.SEAL_SPAN_NAME, c.VIOLATION_SPAN_NAME)


class Archive:
    """One archive directory, read afresh on every call (a writer may still be appending to it);
    a directory that does not exist yet holds no records."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def records(self, trace_id: str | None = None) -> list[SpanRecord]:
        """Every record (spans, seals, violation records), of one trace or all, in start order."""
        if not self.directory.is_dir():
            return []
        source = ArchiveSource(self.directory)
        found = source.trace(trace_id) if trace_id else list(source.all_spans())
        return sorted(found, key=lambda r: (r.start_ns, r.span_id))

    def spans(self, trace_id: str | None = None) -> list[SpanRecord]:
        """The recorded spans, without the seals and violation records provtrace adds."""
        return [r for r in self.records(trace_id) if r.name not in EVIDENCE_RECORDS]

    def seals(self, trace_id: str | None = None) -> list[SpanRecord]:
        return [r for r in self.records(trace_id) if r.is_seal]

    def span(self, name: str, trace_id: str | None = None) -> SpanRecord:
        """The one span with this name (fails the test, listing the names, when not exactly one)."""
        spans = self.spans(trace_id)
        matches = [s for s in spans if s.name == name]
        assert len(matches) == 1, (
            f"expected one span named {name!r} in {self.directory}, got {[s.name for s in spans]}"
        )
        return matches[0]

    def sealed_as(self, span_id: str) -> str:
        """The completeness verdict of the one seal that covers the span."""
        covering = [
            r
            for r in self.seals()
            if any(entry.startswith(f"{span_id}:") for entry in r.attr_strings(c.SEAL_SPANS))
        ]
        assert len(covering) == 1, f"expected one seal covering span {span_id}, got {len(covering)}"
        return str(covering[0].attributes[c.SEAL_COMPLETENESS])

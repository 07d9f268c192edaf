"""Shared fixtures: a configured provtrace with an in-memory view of the spans it records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import provtrace
from provtrace.content import SECRETS
from provtrace.tracing import AuditSampler, audit_span_limits
from tests.example_agent import example_run  # noqa: F401 - the session fixture of the example agent's evidence


@dataclass
class Recorded:
    """A configured provtrace and the spans it produced, for span-shape unit tests."""

    handle: provtrace.Provtrace
    exporter: InMemorySpanExporter
    home: Path

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        matches = [s for s in self.spans() if s.name == name]
        assert len(matches) == 1, f"expected one span named {name!r}, got {[s.name for s in self.spans()]}"
        return matches[0]

    def files_bytes(self) -> bytes:
        """Every byte provtrace wrote to disk (archive, spool, quarantine)."""
        return b"".join(p.read_bytes() for p in sorted(self.home.rglob("*")) if p.is_file())


@pytest.fixture(autouse=True)
def _clean_secrets() -> Iterator[None]:
    yield
    SECRETS.clear()


def make_recorded(tmp_path: Path, **options: object) -> Recorded:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=AuditSampler(), span_limits=audit_span_limits())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings: dict[str, object] = {
        "service_name": "unit-agent",
        "archive_dir": tmp_path / "archive",
        "spool_dir": tmp_path / "spool",
        "quarantine_dir": tmp_path / "quarantine",
        "heartbeat_interval": 3600,
        "tracer_provider": provider,
        "spool_fsync": False,
    }
    settings.update(options)
    handle = provtrace.configure(**settings)  # type: ignore[arg-type]
    return Recorded(handle, exporter, tmp_path)


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Recorded]:
    result = make_recorded(tmp_path)
    yield result
    result.handle.shutdown(timeout_s=10)

"""A configured provtrace for tests: its home in a temporary directory, the spans it records also
kept in memory (their shape is checked before any pipeline stage runs), and the process state
that tests must not leak into each other."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import provtrace
from provtrace import conventions as c
from provtrace import runtime
from provtrace.content import SECRETS
from provtrace.instrumentation import forget_written
from provtrace.steps import base
from provtrace.testing.archive import Archive
from provtrace.tracing import AuditSampler, audit_span_limits


@dataclass
class Recorded:
    """A configured provtrace and the spans it produced."""

    handle: provtrace.Provtrace
    exporter: InMemorySpanExporter
    home: Path

    def spans(self) -> list[ReadableSpan]:
        """Every span ended so far, as the SDK handed it to the exporters."""
        return list(self.exporter.get_finished_spans())

    def steps(self, step: str) -> list[ReadableSpan]:
        """The spans of one kind of step (``provenance.step``: ``c.STEP_LLM_CALL``, ...), in end order."""
        return [s for s in self.spans() if (s.attributes or {}).get(c.STEP) == step]

    def span(self, name: str) -> ReadableSpan:
        """The one span with this name (fails the test, listing the names, when not exactly one)."""
        matches = [s for s in self.spans() if s.name == name]
        assert len(matches) == 1, f"expected one span named {name!r}, got {[s.name for s in self.spans()]}"
        return matches[0]

    @property
    def archive(self) -> Archive:
        """What the pipeline delivered to the local archive (call ``handle.force_flush()`` first)."""
        return Archive(self.handle.archive_dir or self.home / "archive")

    def files_bytes(self) -> bytes:
        """Every byte provtrace wrote to disk (archive, spool, quarantine)."""
        return b"".join(p.read_bytes() for p in sorted(self.home.rglob("*")) if p.is_file())


def make_recorded(home: Path, **options: Any) -> Recorded:
    """``provtrace.configure()`` with everything under ``home``, no heartbeats, no fsync, and an
    in-memory copy of every span; ``options`` are configure()'s keywords and win."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=AuditSampler(), span_limits=audit_span_limits())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings: dict[str, Any] = {
        "service_name": "unit-agent",
        "archive_dir": home / "archive",
        "spool_dir": home / "spool",
        "quarantine_dir": home / "quarantine",
        "heartbeat_interval": 3600,
        "tracer_provider": provider,
        "spool_fsync": False,
    }
    settings.update(options)
    return Recorded(provtrace.configure(**settings), exporter, home)


class Instrumentor(Protocol):
    """What ``instrumented`` needs of an OpenTelemetry ``BaseInstrumentor``."""

    def instrument(self, **kwargs: Any) -> None: ...

    def uninstrument(self, **kwargs: Any) -> None: ...


@contextlib.contextmanager
def instrumented(instrumentor: Instrumentor) -> Iterator[None]:
    """The instrumentation on for the block, and off again whatever happened in it."""
    instrumentor.instrument()
    try:
        yield
    finally:
        instrumentor.uninstrument()


def unconfigure(timeout_s: float = 10.0) -> None:
    """Back to a process in which ``provtrace.configure()`` was never called: whatever is
    configured is shut down, and the one-time warning about recording unconfigured re-armed."""
    handle = provtrace.current()
    if handle is not None:
        handle.shutdown(timeout_s=timeout_s)
    active = runtime.current()
    if active is not None:
        runtime.uninstall(active)
    base._warned_unconfigured.clear()


def forget_secrets() -> None:
    """Secret values fetched in one test are not redacted in the next, and the secret versions
    its actions wrote are not linked to the next test's fetches (both are process-wide)."""
    SECRETS.clear()
    forget_written()

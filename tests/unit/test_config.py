"""configure(): keywords and environment, clear errors, the audit sampler and span limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import provtrace
from provtrace import conventions as c
from provtrace.integrity import write_key_pair
from tests.conftest import Recorded, make_recorded


def test_environment_supplies_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "env-agent")
    monkeypatch.setenv("PROVTRACE_COMPLETENESS", "annotate")
    monkeypatch.setenv("PROVTRACE_PROFILE", "audit")
    monkeypatch.setenv("PROVTRACE_CAPTURE_CONTENT", "digest")
    monkeypatch.setenv("PROVTRACE_HEARTBEAT_INTERVAL", "12.5")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")
    handle = provtrace.configure(
        archive_dir=tmp_path / "a", spool_dir=tmp_path / "s", quarantine_dir=tmp_path / "q"
    )
    try:
        settings = handle.pipeline.settings
        assert settings.service_name == "env-agent"
        assert settings.completeness == "annotate"
        assert settings.profile == "audit"
        assert handle.capture.mode == "digest"
        assert settings.heartbeat_interval_s == 12.5
        assert handle.endpoint == "http://127.0.0.1:4318/v1/traces"
        assert [s.name for s in handle.pipeline.sinks] == ["archive", "otlp"]
    finally:
        handle.shutdown(timeout_s=0.1)


def test_keywords_win_over_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVTRACE_COMPLETENESS", "annotate")
    recorded = make_recorded(tmp_path, completeness="off")
    try:
        assert recorded.handle.pipeline.settings.completeness == "off"
    finally:
        recorded.handle.shutdown(10)


def test_default_is_the_embedded_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVTRACE_HOME", str(tmp_path))
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "PROVTRACE_ARCHIVE_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    handle = provtrace.configure(service_name="x")
    try:
        assert handle.archive_dir == tmp_path / "archive"
        assert handle.endpoint is None
        assert handle.quarantine_dir == tmp_path / "quarantine"
    finally:
        handle.shutdown(10)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"completeness": "strict"},
            "completeness must be one of enforce, annotate, off; got 'strict'",
        ),
        ({"profile": "sox"}, "profile must be one of baseline, audit; got 'sox'"),
        (
            {"capture_content": "all"},
            "capture_content must be one of none, digest, redacted, full; got 'all'",
        ),
        ({"heartbeat_interval": "soon"}, "heartbeat_interval must be a number, got 'soon'"),
        ({"max_buffered_spans": 0}, "max_buffered_spans must be at least 1, got 0"),
        ({"endpoint": "127.0.0.1:4318"}, "endpoint must be an OTLP/HTTP URL"),
        (
            {"signing_key": "/nonexistent/key.pem"},
            "signing_key: cannot read signing key /nonexistent/key.pem",
        ),
        ({"violation_handler": "log"}, "violation_handler must be a callable"),
    ],
)
def test_invalid_settings_are_clear_errors(tmp_path: Path, options: dict[str, object], message: str) -> None:
    with pytest.raises(provtrace.ConfigurationError) as error:
        provtrace.configure(spool_dir=tmp_path, **options)  # type: ignore[arg-type]
    assert message in str(error.value)


def test_signing_key_from_file(tmp_path: Path) -> None:
    key_id = write_key_pair(tmp_path / "k.pem", tmp_path / "k.pub")
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    recorded = make_recorded(tmp_path, signing_key=str(tmp_path / "k.pem"))
    try:
        assert recorded.handle.key_id == key_id
    finally:
        recorded.handle.shutdown(10)


def test_unsampled_remote_parent_does_not_suppress_evidence(recorded: Recorded) -> None:
    carrier = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}
    parent = TraceContextTextMapPropagator().extract(carrier)
    token = otel_context.attach(parent)
    try:
        with provtrace.tool_call("called remotely") as tool:
            assert tool.span.is_recording()
    finally:
        otel_context.detach(token)
    span = recorded.span("execute_tool called remotely")
    assert format(span.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.parent is not None and span.parent.is_remote
    assert dict(span.attributes or {})[c.UPSTREAM_SAMPLED] is False


def test_span_limits_keep_every_attribute_event_and_link(recorded: Recorded) -> None:
    with provtrace.decision("d", trigger="t", actor="a") as d:
        for i in range(200):
            with provtrace.secret_fetch("vault", f"kv/{i}", nhi="n") as s:
                s.record_value(f"secret-value-{i:04d}")
        with provtrace.tool_call("wide") as tool:
            for i in range(300):
                tool.set_attribute(f"extra.{i}", i)
                tool.span.add_event(f"e{i}")
        with provtrace.action("x", target="y", params={}):
            pass
    assert d.id
    action = recorded.span("action x")
    assert len(action.links) == 200
    wide = recorded.span("execute_tool wide")
    assert len(wide.events) == 300
    assert wide.dropped_attributes == wide.dropped_events == action.dropped_links == 0


def test_attaches_to_an_existing_tracer_provider(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handle = provtrace.configure(
        service_name="attached",
        tracer_provider=provider,
        archive_dir=tmp_path / "a",
        spool_dir=tmp_path / "s",
        quarantine_dir=tmp_path / "q",
    )
    try:
        tracer = provider.get_tracer("app")
        with (
            tracer.start_as_current_span("app work"),
            provtrace.decision("d", trigger="t", actor="a"),
        ):
            pass
        assert handle.force_flush(10)
        assert [s.name for s in exporter.get_finished_spans()] == ["decision d", "app work"]
        assert handle.counters["spans_processed"] == 2
    finally:
        handle.shutdown(10)
    assert trace.get_tracer_provider() is not provider

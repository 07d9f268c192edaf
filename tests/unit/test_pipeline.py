"""The pipeline behind the processor: modes, quarantine, spool durability and counters."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import provtrace
from provtrace import conventions as c
from provtrace.cli.main import main as cli
from provtrace.integrity import write_key_pair
from provtrace.readers.archive import ArchiveSource
from provtrace.reconstruct import reconstruct
from tests.conftest import make_recorded
from tests.scenario import reference_scenario


def archive(tmp_path: Path, trace_id: str) -> list[Any]:
    return ArchiveSource(tmp_path / "archive").trace(trace_id) if (tmp_path / "archive").is_dir() else []


def run(
    tmp_path: Path, mode: str, reports: list[provtrace.ViolationReport] | None = None, **options: Any
) -> tuple[str, str, dict[str, int]]:
    handler = reports.append if reports is not None else None
    recorded = make_recorded(tmp_path, completeness=mode, violation_handler=handler, **options)
    try:
        complete = reference_scenario()["decision"].trace_id
        incomplete = reference_scenario(approve=False)["decision"].trace_id
        assert recorded.handle.force_flush(30)
        counters = recorded.handle.counters
    finally:
        recorded.handle.shutdown(30)
    return complete, incomplete, counters


def test_enforce_quarantines_incomplete_and_forwards_only_a_violation_record(tmp_path: Path) -> None:
    reports: list[provtrace.ViolationReport] = []
    complete, incomplete, counters = run(tmp_path, "enforce", reports)
    assert len(archive(tmp_path, complete)) == 9
    forwarded = archive(tmp_path, incomplete)
    assert sorted(r.name for r in forwarded) == [c.SEAL_SPAN_NAME, c.VIOLATION_SPAN_NAME]
    violation = next(r for r in forwarded if r.name == c.VIOLATION_SPAN_NAME)
    assert violation.attributes[c.VIOLATION_CODES] == (c.RULE_LINK_APPROVAL,)
    assert violation.attributes[c.VIOLATION_SPAN_COUNT] == 7
    (report,) = reports
    assert report.trace_id == incomplete
    assert report.codes == (c.RULE_LINK_APPROVAL,)
    assert violation.attributes[c.VIOLATION_QUARANTINE_ID] == report.quarantine_id
    content = json.dumps([dict(r.attributes) for r in forwarded])
    assert "sg-123" not in content  # the violation record carries no content
    seal = next(r for r in forwarded if r.name == c.SEAL_SPAN_NAME)
    assert seal.attributes[c.SEAL_COMPLETENESS] == c.COMPLETENESS_INCOMPLETE
    assert len(seal.attributes[c.SEAL_WITHHELD]) == 7  # type: ignore[arg-type]
    assert counters["segments_quarantined"] == 1
    assert counters["segments_complete"] == counters["segments_incomplete"] == 1


def test_annotate_forwards_everything_with_its_verdict(tmp_path: Path) -> None:
    _, incomplete, counters = run(tmp_path, "annotate")
    forwarded = archive(tmp_path, incomplete)
    assert len(forwarded) == 9  # seven steps, the violation record, the seal
    seal = next(r for r in forwarded if r.name == c.SEAL_SPAN_NAME)
    assert seal.attributes[c.SEAL_COMPLETENESS] == c.COMPLETENESS_INCOMPLETE
    assert seal.attributes[c.SEAL_VIOLATIONS] == (c.RULE_LINK_APPROVAL,)
    assert counters["segments_quarantined"] == 0
    assert not list((tmp_path / "quarantine").glob("*.json"))


def test_off_forwards_unchecked(tmp_path: Path) -> None:
    _, incomplete, counters = run(tmp_path, "off")
    seal = next(r for r in archive(tmp_path, incomplete) if r.name == c.SEAL_SPAN_NAME)
    assert seal.attributes[c.SEAL_COMPLETENESS] == c.COMPLETENESS_UNCHECKED
    assert counters["segments_checked"] == 0
    assert counters["segments_unchecked"] == 2


def test_quarantine_list_show_and_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, public = tmp_path / "keys" / "agent.key", tmp_path / "keys" / "agent.pub"
    write_key_pair(key, public)
    monkeypatch.setenv("PROVTRACE_PUBLIC_KEY", str(public))
    monkeypatch.delenv("PROVTRACE_SIGNING_KEY", raising=False)
    _, incomplete, _ = run(tmp_path, "enforce", signing_key=key)
    qdir = str(tmp_path / "quarantine")
    assert cli(["quarantine", "--dir", qdir, "list", "--format", "json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["trace_id"] == incomplete
    assert entry["codes"] == [c.RULE_LINK_APPROVAL]
    assert cli(["quarantine", "--dir", qdir, "show", entry["id"]]) == 0
    shown = capsys.readouterr().out
    assert "LINK-APPROVAL" in shown
    assert "firewall.rule.open on sg-123/rule-9" in shown
    assert cli(["verify", incomplete, "--archive", str(tmp_path / "archive")]) == 0
    assert "quarantined at the source" in capsys.readouterr().out
    release = [
        "quarantine",
        "--dir",
        qdir,
        "release",
        entry["id"],
        "--by",
        "carol",
        "--reason",
        "approved by phone, ticket CHG-42",
    ]
    assert cli(release) == 2
    assert "say where to forward" in capsys.readouterr().err
    assert cli([*release, "--archive", str(tmp_path / "archive")]) == 2
    assert "give --signing-key" in capsys.readouterr().err
    monkeypatch.setenv("PROVTRACE_SIGNING_KEY", str(key))
    assert cli([*release, "--archive", str(tmp_path / "archive")]) == 0
    capsys.readouterr()
    spans = archive(tmp_path, incomplete)
    released = next(r for r in spans if r.name == c.RELEASE_SPAN_NAME)
    assert released.attributes[c.RELEASE_BY] == "carol"
    assert released.attributes[c.RELEASE_REASON] == "approved by phone, ticket CHG-42"
    assert len([r for r in spans if r.step]) == 7
    chain = reconstruct(incomplete, spans)
    assert chain.completeness == c.COMPLETENESS_INCOMPLETE  # a release keeps the verdict
    assert cli(["verify", incomplete, "--archive", str(tmp_path / "archive")]) == 0
    assert "quarantined at the source" not in capsys.readouterr().out
    assert cli(["quarantine", "--dir", qdir, "list"]) == 0
    assert capsys.readouterr().out == ""
    assert (
        cli(["quarantine", "--dir", qdir, "release", entry["id"], "--reason", "again", "--archive", "x"]) == 2
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_undelivered_evidence_stays_in_the_spool_and_the_next_process_delivers_it(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the archive directory should be")
    first = provtrace.configure(
        service_name="spool",
        archive_dir=blocked,
        spool_dir=tmp_path / "spool",
        quarantine_dir=tmp_path / "q",
        heartbeat_interval=3600,
    )
    trace_id = reference_scenario()["decision"].trace_id
    assert not first.shutdown(timeout_s=1)
    assert first.counters["spool_pending_bytes"] > 0
    assert list((tmp_path / "spool").rglob("journal-*.jsonl")), "the sealed segment must wait in the spool"
    second = provtrace.configure(
        service_name="spool",
        archive_dir=tmp_path / "archive",
        spool_dir=tmp_path / "spool",
        quarantine_dir=tmp_path / "q",
        heartbeat_interval=3600,
    )
    assert second.force_flush(timeout_s=30)
    second.shutdown(timeout_s=30)
    assert len(archive(tmp_path, trace_id)) == 9
    assert not list((tmp_path / "spool").rglob("journal-*.jsonl"))


def test_a_journal_for_another_destination_is_kept_for_a_process_that_has_it(tmp_path: Path) -> None:
    unreachable = f"http://127.0.0.1:{closed_port()}"
    first = provtrace.configure(
        service_name="spool",
        endpoint=unreachable,
        spool_dir=tmp_path / "spool",
        quarantine_dir=tmp_path / "q",
    )
    trace_id = reference_scenario()["decision"].trace_id
    assert not first.shutdown(timeout_s=1)
    second = provtrace.configure(
        service_name="spool",
        archive_dir=tmp_path / "archive",
        spool_dir=tmp_path / "spool",
        quarantine_dir=tmp_path / "q",
    )
    assert second.force_flush(timeout_s=30)
    second.shutdown(timeout_s=30)
    assert len(archive(tmp_path, trace_id)) == 9  # this process delivered it where it could
    kept = list((tmp_path / "spool").rglob("journal-*.jsonl"))
    assert kept, "the collector never got it: the journal must stay for a process that sends there"


def test_counters_are_exported_as_otel_metrics(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    recorded = make_recorded(tmp_path, meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        reference_scenario()
        assert recorded.handle.force_flush(30)
        data = reader.get_metrics_data()
    finally:
        recorded.handle.shutdown(30)
    assert data is not None
    values = {
        metric.name: point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    }
    assert values["provtrace.segments_complete"] == 1
    assert values["provtrace.spans_processed"] == 8
    assert values["provtrace.buffered_spans"] == 0


def test_a_failing_segment_is_reported_lost_and_the_sealer_keeps_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def junk_rule(ctx: provtrace.SegmentContext) -> list[object]:
        return ["not a violation"]

    recorded = make_recorded(tmp_path, rules=[junk_rule])
    original = recorded.handle.pipeline.sealer.seal
    calls = {"n": 0}

    def flaky_seal(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("disk on fire")
        return original(**kwargs)

    monkeypatch.setattr(recorded.handle.pipeline.sealer, "seal", flaky_seal)
    try:
        lost = reference_scenario()["decision"].trace_id
        kept = reference_scenario()["decision"].trace_id
        assert recorded.handle.force_flush(30)
        counters = recorded.handle.counters
    finally:
        recorded.handle.shutdown(30)
    assert counters["spans_lost"] == 8
    assert counters["rule_errors"] == 1  # the lost segment's verdict (and its counts) never landed
    assert any(f"lost 8 span(s) of trace {lost}" in r.getMessage() for r in caplog.records)
    assert len(archive(tmp_path, kept)) == 9


def test_a_span_ending_after_shutdown_is_counted_as_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorded = make_recorded(tmp_path)
    late = recorded.handle.tracer.start_span("late")
    recorded.handle.shutdown(30)
    late.end()
    assert recorded.handle.counters["spans_lost"] == 1
    assert any("ended after provtrace shut down" in r.getMessage() for r in caplog.records)


def test_a_tampered_quarantine_entry_is_not_released(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, public = tmp_path / "keys" / "agent.key", tmp_path / "keys" / "agent.pub"
    write_key_pair(key, public)
    _, incomplete, _ = run(tmp_path, "enforce", signing_key=key)
    (entry,) = (tmp_path / "quarantine").glob("q-*.json")
    body = json.loads(entry.read_text())
    text = json.dumps(body["spans"]).replace("sg-123/rule-9", "sg-999/rule-0")
    body["spans"] = json.loads(text)
    entry.write_text(json.dumps(body))
    release = [
        *("quarantine", "--dir", str(tmp_path / "quarantine"), "release", entry.stem),
        *("--reason", "x", "--archive", str(tmp_path / "archive"), "--signing-key", str(key)),
    ]
    assert cli(release) == 2
    assert "was modified after it was quarantined" in capsys.readouterr().err
    # An attacker who also rewrites the recorded digests gets the release through, but the
    # original seal's withheld digests still expose the change.
    from provtrace.export.quarantine import Quarantine
    from provtrace.integrity import span_digest

    stored = Quarantine(tmp_path / "quarantine").get(entry.stem)
    body["digests"] = {r.span_id: span_digest(r) for r in stored.records}
    entry.write_text(json.dumps(body))
    assert cli(release) == 0
    assert (
        cli(["verify", incomplete, "--archive", str(tmp_path / "archive"), "--public-key", str(public)]) == 1
    )

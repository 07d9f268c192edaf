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
from provtrace.readers.archive import ArchiveSource
from provtrace.reconstruct import reconstruct
from tests.conftest import make_recorded
from tests.scenario import reference_scenario


def archive(tmp_path: Path, trace_id: str) -> list[Any]:
    return ArchiveSource(tmp_path / "archive").trace(trace_id) if (tmp_path / "archive").is_dir() else []


def run(
    tmp_path: Path, mode: str, reports: list[provtrace.ViolationReport] | None = None
) -> tuple[str, str, dict[str, int]]:
    handler = reports.append if reports is not None else None
    recorded = make_recorded(tmp_path, completeness=mode, violation_handler=handler)
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


def test_quarantine_list_show_and_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, incomplete, _ = run(tmp_path, "enforce")
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
    unreachable = f"http://127.0.0.1:{closed_port()}"
    first = provtrace.configure(
        service_name="spool",
        endpoint=unreachable,
        spool_dir=tmp_path / "spool",
        quarantine_dir=tmp_path / "q",
        heartbeat_interval=3600,
    )
    trace_id = reference_scenario()["decision"].trace_id
    assert not first.shutdown(timeout_s=1)
    assert first.counters["spool_pending_bytes"] > 0
    journals = list((tmp_path / "spool").rglob("journal-*.jsonl"))
    assert journals, "the sealed segment must wait in the spool"
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

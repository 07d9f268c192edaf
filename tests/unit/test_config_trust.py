"""Configuration must not turn evidence off or cut it short while provtrace still says yes:
OTEL_SDK_DISABLED, attribute limits from the environment or the application's provider, fork,
and a spool that breaks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider

import provtrace
from provtrace import conventions as c
from provtrace.integrity import write_key_pair
from provtrace.readers.archive import ArchiveSource
from provtrace.tracing import AuditSampler
from tests.conftest import Recorded, make_recorded
from tests.scenario import REQ, reference_scenario

REPO = Path(__file__).resolve().parents[2]

SCENARIO = """
import json, sys
import provtrace
from tests.scenario import REQ, reference_scenario

handle = provtrace.configure(service_name="env-agent", archive_dir=sys.argv[1] + "/archive",
                             spool_dir=sys.argv[1] + "/spool", quarantine_dir=sys.argv[1] + "/q",
                             signing_key=sys.argv[1] + "/agent.key", heartbeat_interval=3600)
trace_id = reference_scenario()["decision"].trace_id
ran = []
try:
    with provtrace.decision("guarded", trigger="t", actor="agent"):
        with provtrace.policy_check("fw-change", input=REQ) as p:
            p.allow()
        with provtrace.approval(approver="alice", for_action=REQ) as a:
            a.approve()
        with provtrace.action("fw.open", target="sg-123", privileged=True, params=REQ,
                              require=("policy", "approval")):
            ran.append(True)
except provtrace.ProvenanceViolation as refusal:
    ran.append(list(refusal.codes))
health = handle.health()
flushed = handle.force_flush(30)
counters = handle.counters
handle.shutdown(30)
print(json.dumps({"trace_id": trace_id, "guarded": ran, "health": [health.ok, list(health.problems)],
                  "flushed": flushed, "counters": counters}))
"""


def run_scenario(tmp_path: Path, env: dict[str, str]) -> dict[str, object]:
    write_key_pair(tmp_path / "agent.key", tmp_path / "agent.pub")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROVTRACE_"))}
    result = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
        env={**clean, **env},
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, object] = json.loads(result.stdout)
    out["stderr"] = result.stderr
    return out


def test_otel_sdk_disabled_refuses_guarded_actions_and_says_so(tmp_path: Path) -> None:
    """Documented choice: provtrace follows OTEL_SDK_DISABLED (nothing is recorded), so health is
    not ok, configure() warns, and the guard refuses every guarded action."""
    out = run_scenario(tmp_path, {"OTEL_SDK_DISABLED": "true"})
    (codes,) = out["guarded"]  # type: ignore[misc]
    assert "PIPELINE" in codes
    ok, problems = out["health"]  # type: ignore[misc]
    assert not ok
    assert any("OTEL_SDK_DISABLED" in p for p in problems)
    assert "no evidence will be recorded and every guarded action will be refused" in str(out["stderr"])
    assert out["counters"]["steps_unrecorded"] > 0  # type: ignore[index]


def test_attribute_limits_in_the_environment_do_not_cut_provtraces_own_spans(tmp_path: Path) -> None:
    limits = {
        "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "10",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "10",
        "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "3",
        "OTEL_SPAN_EVENT_COUNT_LIMIT": "1",
        "OTEL_SPAN_LINK_COUNT_LIMIT": "1",
    }
    out = run_scenario(tmp_path, limits)
    assert out["guarded"] == [True]
    records = ArchiveSource(tmp_path / "archive").trace(str(out["trace_id"]))
    action = next(r for r in records if r.step == c.STEP_ACTION)
    assert len(str(action.attributes[c.ACTION_PARAMS_SHA256])) == 64
    assert len(action.links) == 4
    seal = next(r for r in records if r.is_seal)
    assert seal.attributes[c.SEAL_COMPLETENESS] == c.COMPLETENESS_COMPLETE


@pytest.mark.parametrize(
    ("limits", "cut"),
    [
        (SpanLimits(max_span_attribute_length=30), {"reference", "errored"}),  # digests are 64 long
        # the general limit also caps span attributes unless they have their own (OTel SDK)
        (SpanLimits(max_attribute_length=30, max_span_attribute_length=1000), {"errored"}),
        (SpanLimits(max_span_attributes=5), {"reference", "errored"}),
        (SpanLimits(max_link_attributes=0), {"reference"}),  # only the reference decision links
    ],
    ids=["span value length", "event and link value length", "attribute count", "link attribute count"],
)
def test_an_application_provider_that_cuts_provenance_spans_is_flagged(
    tmp_path: Path, limits: SpanLimits, cut: set[str]
) -> None:
    provider = TracerProvider(sampler=AuditSampler(), span_limits=limits)
    handle = provtrace.configure(
        service_name="limited",
        archive_dir=tmp_path / "archive",
        spool_dir=tmp_path / "spool",
        quarantine_dir=tmp_path / "q",
        heartbeat_interval=3600,
        tracer_provider=provider,
        spool_fsync=False,
    )
    try:
        traces = {"reference": reference_scenario()["decision"].trace_id}
        with provtrace.decision("errored", trigger="t", actor="agent") as errored:
            with pytest.raises(ValueError, match="boom"), provtrace.tool_call("t") as tool:
                tool.record_input({"x": 1})
                raise ValueError("boom " + "x" * 100)  # the exception event's attributes are long
        traces["errored"] = errored.trace_id
        assert handle.force_flush(30)
    finally:
        handle.shutdown(30)
    entries = [json.loads(p.read_text()) for p in (tmp_path / "q").glob("q-*.json")]
    quarantined = {
        e["trace_id"] for e in entries if c.RULE_ATTR_DROPPED in {v["code"] for v in e["violations"]}
    }
    assert quarantined == {traces[name] for name in cut}
    for name in set(traces) - cut:
        seal = next(r for r in ArchiveSource(tmp_path / "archive").trace(traces[name]) if r.is_seal)
        assert seal.attributes[c.SEAL_COMPLETENESS] == c.COMPLETENESS_COMPLETE


def test_a_forked_child_records_into_its_own_stream(tmp_path: Path) -> None:
    write_key_pair(tmp_path / "agent.key", tmp_path / "agent.pub")
    handle = provtrace.configure(
        service_name="forking",
        archive_dir=tmp_path / "archive",
        spool_dir=tmp_path / "spool",
        quarantine_dir=tmp_path / "q",
        signing_key=tmp_path / "agent.key",
        heartbeat_interval=3600,
        spool_fsync=False,
    )
    try:
        parent_trace = reference_scenario()["decision"].trace_id
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: record, flush, report, and leave without running pytest's exit
            status = 1
            try:
                os.close(read)
                child_trace = reference_scenario()["decision"].trace_id
                delivered = handle.force_flush(30) and handle.shutdown(30)
                os.write(write, json.dumps([child_trace, handle.stream_id, delivered]).encode())
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        with os.fdopen(read) as pipe:
            child_trace, child_stream, delivered = json.loads(pipe.read() or "null")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert delivered
        assert child_stream != handle.stream_id
        assert handle.force_flush(30)
    finally:
        handle.shutdown(30)
    source = ArchiveSource(tmp_path / "archive")
    assert len([r for r in source.trace(child_trace) if r.step]) == 8
    assert len([r for r in source.trace(parent_trace) if r.step]) == 8
    from provtrace.cli.main import main as cli

    archive = str(tmp_path / "archive")
    assert cli(["verify", "--stream", "--archive", archive, "--public-key", str(tmp_path / "agent.pub")]) == 0


def guarded_action_runs() -> bool | tuple[str, ...]:
    try:
        with provtrace.decision("guarded", trigger="t", actor="agent"):
            with provtrace.policy_check("fw-change", input=REQ) as p:
                p.allow()
            with provtrace.approval(approver="alice", for_action=REQ) as a:
                a.approve()
            with provtrace.action(
                "fw.open", target="sg-123", privileged=True, params=REQ, require=("policy", "approval")
            ):
                return True
    except provtrace.ProvenanceViolation as refusal:
        return refusal.codes


def remove(spool: Path) -> None:
    shutil.rmtree(spool)


def replace_with_a_file(spool: Path) -> None:
    shutil.rmtree(spool)
    spool.write_text("not a directory")


@pytest.mark.parametrize("breakage", [remove, replace_with_a_file], ids=lambda f: f.__name__)
def test_a_broken_spool_is_found_before_a_guarded_action_and_never_raises(
    tmp_path: Path, breakage: object, caplog: pytest.LogCaptureFixture
) -> None:
    recorded = make_recorded(tmp_path)
    assert guarded_action_runs() is True
    assert recorded.handle.force_flush(30)
    breakage(recorded.handle.pipeline.spool.directory)  # type: ignore[operator]
    health = recorded.handle.health()
    assert not health.ok
    assert any("spool directory" in p for p in health.problems)
    assert guarded_action_runs() == ("PIPELINE",)
    reference_scenario()  # unguarded: recorded, but the spool cannot persist it
    assert recorded.handle.shutdown(10) is False  # and shutting down does not raise
    assert recorded.handle.counters["spans_lost"] > 0
    assert "lost" in caplog.text


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, mounted for the test (needs root: CI runs as root)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small filesystem needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_full_or_read_only_spool_filesystem_refuses_guarded_actions(
    small_filesystem: Path, tmp_path: Path, fault: str
) -> None:
    recorded = make_recorded(tmp_path, spool_dir=small_filesystem / "spool")
    try:
        assert guarded_action_runs() is True
        spool = recorded.handle.pipeline.spool.directory
        if fault == "full":
            fd = os.open(small_filesystem / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while os.write(fd, b"\0" * 65536):  # unbuffered: nothing is left to flush on close
                    pass
            except OSError:
                pass  # full
            finally:
                os.close(fd)
        else:  # the spool directory becomes a read-only view of itself (open files stay open)
            subprocess.run(["mount", "--bind", str(spool), str(spool)], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(spool)], check=True)
        health = recorded.handle.health()
        assert not health.ok, health
        assert guarded_action_runs() == ("PIPELINE",)
    finally:
        if fault == "read-only":
            subprocess.run(["umount", str(recorded.handle.pipeline.spool.directory)], check=False)
        (small_filesystem / "filler").unlink(missing_ok=True)
        recorded.handle.shutdown(10)


def test_a_step_the_provider_does_not_record_is_counted_and_logged(
    recorded: Recorded, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    provider = TracerProvider(sampler=AuditSampler(), span_limits=SpanLimits())
    handle = provtrace.configure(
        service_name="off",
        archive_dir=recorded.home / "off-archive",
        spool_dir=recorded.home / "off-spool",
        quarantine_dir=recorded.home / "off-q",
        tracer_provider=provider,
        heartbeat_interval=3600,
    )
    try:
        assert not handle.recording
        reference_scenario()
        assert handle.counters["steps_unrecorded"] == 8
        assert "is not being recorded" in caplog.text
    finally:
        handle.shutdown(10)

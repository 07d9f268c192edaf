"""Faults between the agent and its evidence store, with the real collector and Jaeger: each test
produces decisions through a fault and checks, by span id, that every step produced arrived in
the collector's archive (and in Jaeger), or was reported: lost (``spans_lost``, logged with its
reason) or refused for good (moved aside, counted, in ``health()`` and ``provtrace doctor``).

Each test prints one ``FAULT`` line with its counts (``pytest -s`` shows them). The spool on a
tiny or read-only filesystem needs a tmpfs mount, so those tests run as root and are skipped
otherwise.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import provtrace
from provtrace.cli.main import main as cli
from provtrace.errors import ProvenanceViolation
from provtrace.export.refused import RefusedSegments
from provtrace.spool import COMPACT_BYTES
from provtrace.testing import Agent, Archive, Stack, in_jaeger, wait_for
from provtrace.testing.stack import COLLECTOR
from tests.scenario import reference_scenario

logger = logging.getLogger("provtrace.tests.faults")


def step_ids(handles: dict[str, Any]) -> set[str]:
    return {handle.span_id for handle in handles.values()}


def arrived(stack: Stack, produced: set[str]) -> set[str]:
    """The produced span ids now in the collector's archive."""
    return produced & {record.span_id for record in Archive(stack.archive_dir).records()}


def wait_arrived(stack: Stack, produced: set[str], timeout_s: float = 120.0) -> set[str]:
    return wait_for(
        f"{len(produced)} spans in the collector's archive",
        lambda: found if (found := arrived(stack, produced)) == produced else None,
        timeout_s=timeout_s,
    )


def report(fault: str, **counts: int) -> None:
    line = f"FAULT {fault}: " + " ".join(f"{name}={value}" for name, value in counts.items())
    print(line)
    logger.warning(line)


def in_jaeger_too(stack: Stack, trace_id: str, ids: set[str]) -> None:
    wait_for(
        f"trace {trace_id} in Jaeger",
        lambda: True if ids <= {r.span_id for r in in_jaeger(stack, trace_id)} else None,
    )


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of the test's own (root only), unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs for the spool needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(
        ["/bin/mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["/bin/umount", "-l", str(mount)], check=False, timeout=30)


def remount(mount: Path, mode: str) -> None:
    """Remount ``ro`` or ``rw``, retried while a write in progress keeps the mount busy."""

    def attempt() -> bool | None:
        argv = ["/bin/mount", "-o", f"remount,{mode}", str(mount)]
        done = subprocess.run(argv, capture_output=True, check=False, timeout=30)
        return True if done.returncode == 0 else None

    wait_for(f"{mount} remounted {mode}", attempt, timeout_s=30)


def fill(mount: Path, leave_bytes: int) -> Path:
    """Fill the filesystem but ``leave_bytes``."""
    filler = mount / "filler"
    fs = os.statvfs(mount)
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, fs.f_bavail * fs.f_frsize - leave_bytes))
    return filler


def test_collector_down_then_back_loses_nothing(agent: Agent) -> None:
    stack = agent.stack
    produced = step_ids(reference_scenario())
    assert agent.handle.force_flush(timeout_s=60)
    stack.stop_collector()
    try:
        during = [reference_scenario() for _ in range(40)]
        for handles in during:
            produced |= step_ids(handles)
        assert not agent.handle.force_flush(timeout_s=2)
        health = agent.handle.health()
        assert health.ok and any("delivery to otlp failing" in w for w in health.warnings)
        assert agent.handle.counters["spool_pending_bytes"] > 0
    finally:
        stack.start_collector(timeout=120)
    assert agent.handle.force_flush(timeout_s=120)
    found = wait_arrived(stack, produced)
    in_jaeger_too(stack, during[-1]["decision"].trace_id, step_ids(during[-1]))
    lost = agent.handle.counters["spans_lost"]
    report("collector-down-then-back", produced=len(produced), arrived=len(found), lost=lost)
    assert lost == 0 and not agent.handle.health().warnings


def test_collector_killed_mid_burst_loses_nothing(agent: Agent) -> None:
    stack = agent.stack
    before = len(Archive(stack.archive_dir).records())
    produced: set[str] = set()
    last: list[dict[str, Any]] = []

    def burst() -> None:
        for _ in range(300):
            handles = reference_scenario()
            produced.update(step_ids(handles))
            last[:] = [handles]

    producer = threading.Thread(target=burst)
    producer.start()
    try:
        wait_for(
            "the burst to reach the collector",
            lambda: True if len(Archive(stack.archive_dir).records()) > before + 200 else None,
        )
        pid = stack.pid(COLLECTOR)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        stack.stop_collector()  # reaps the killed process
        stack.start_collector(timeout=120)
    finally:
        producer.join(timeout=300)
        stack.start_collector(timeout=120)
    assert not producer.is_alive()
    assert agent.handle.force_flush(timeout_s=180)
    found = wait_arrived(stack, produced)
    ids = [r.span_id for r in Archive(stack.archive_dir).records() if r.span_id in produced]
    in_jaeger_too(stack, last[0]["decision"].trace_id, step_ids(last[0]))
    lost = agent.handle.counters["spans_lost"]
    report(
        "collector-sigkill-mid-burst",
        produced=len(produced),
        arrived=len(found),
        duplicates=len(ids) - len(set(ids)),
        lost=lost,
    )
    assert lost == 0


def test_a_spool_on_a_tiny_filesystem_holds_only_what_is_undelivered(
    evidence_stack: Stack, tmp_path: Path, tiny_fs: Path
) -> None:
    # 250 decisions write about 3.6 MB of sealed segments through a 2 MiB spool filesystem.
    agent = Agent(evidence_stack, tmp_path / "agent", spool_dir=tiny_fs / "spool")
    try:
        produced: set[str] = set()
        for _ in range(250):
            produced |= step_ids(reference_scenario())
        assert agent.handle.force_flush(timeout_s=120)
        counters = agent.handle.counters
        on_disk = sum(p.stat().st_size for p in (tiny_fs / "spool").rglob("journal-*.jsonl"))
        assert on_disk < COMPACT_BYTES + 64 * 1024, on_disk  # delivered journals were replaced
        assert agent.handle.health().ok
    finally:
        agent.handle.shutdown(timeout_s=60)
    found = wait_arrived(evidence_stack, produced)
    report(
        "tiny-spool-filesystem",
        produced=len(produced),
        arrived=len(found),
        lost=counters["spans_lost"],
        journal_bytes_left=on_disk,
    )
    assert counters["spans_lost"] == 0


def test_a_full_spool_disk_that_frees_up_again_loses_nothing(
    evidence_stack: Stack, tmp_path: Path, tiny_fs: Path
) -> None:
    agent = Agent(evidence_stack, tmp_path / "agent", spool_dir=tiny_fs / "spool")
    try:
        produced = step_ids(reference_scenario())
        assert agent.handle.force_flush(timeout_s=60)
        filler = fill(tiny_fs, leave_bytes=100_000)  # under the spool's reserve: no segment fits
        for _ in range(30):
            produced |= step_ids(reference_scenario())
        assert not agent.handle.force_flush(timeout_s=3)
        full = agent.handle.health()
        assert not full.ok and any("full" in p or "No space" in p for p in full.problems), full
        filler.unlink()
        assert agent.handle.force_flush(timeout_s=120)
        counters = agent.handle.counters
    finally:
        agent.handle.shutdown(timeout_s=60)
    found = wait_arrived(evidence_stack, produced)
    report(
        "spool-disk-full-then-freed",
        produced=len(produced),
        arrived=len(found),
        lost=counters["spans_lost"],
        torn_records=counters["spool_torn_records"],
    )
    assert counters["spans_lost"] == 0


def test_shutdown_with_the_spool_disk_full_reports_what_is_lost(
    evidence_stack: Stack, tmp_path: Path, tiny_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(evidence_stack, tmp_path / "agent", spool_dir=tiny_fs / "spool")
    produced = step_ids(reference_scenario())
    assert agent.handle.force_flush(timeout_s=60)
    fill(tiny_fs, leave_bytes=0)
    for _ in range(20):
        produced |= step_ids(reference_scenario())
    with caplog.at_level(logging.ERROR, logger="provtrace"):
        assert agent.handle.shutdown(timeout_s=30) is False
    lost = agent.handle.counters["spans_lost"]
    found = arrived(evidence_stack, produced)
    missing = produced - found
    report("shutdown-with-spool-disk-full", produced=len(produced), arrived=len(found), lost=lost)
    assert missing and lost >= len(missing)  # the 8 steps of each lost segment, and its seal
    said = [
        r.getMessage() for r in caplog.records if f"lost {lost} sealed span(s) at shutdown" in r.getMessage()
    ]
    assert said and "No space left on device" in said[0], [r.getMessage() for r in caplog.records]


def test_a_read_only_spool_stops_guarded_actions_and_loses_nothing_once_writable(
    evidence_stack: Stack, tmp_path: Path, tiny_fs: Path
) -> None:
    agent = Agent(evidence_stack, tmp_path / "agent", spool_dir=tiny_fs / "spool")
    try:
        produced = step_ids(reference_scenario())
        assert agent.handle.force_flush(timeout_s=60)
        remount(tiny_fs, "ro")
        try:
            health = agent.handle.health()
            assert not health.ok and any("read-only" in p for p in health.problems), health
            with pytest.raises(ProvenanceViolation) as refused:
                reference_scenario(guard=True)
            assert refused.value.codes == ("PIPELINE",)
            for _ in range(10):
                produced |= step_ids(reference_scenario())
            assert not agent.handle.force_flush(timeout_s=3)
        finally:
            remount(tiny_fs, "rw")
        assert agent.handle.force_flush(timeout_s=120)
        counters = agent.handle.counters
    finally:
        agent.handle.shutdown(timeout_s=60)
    found = wait_arrived(evidence_stack, produced)
    report("read-only-spool", produced=len(produced), arrived=len(found), lost=counters["spans_lost"])
    assert counters["spans_lost"] == 0


def test_a_segment_the_collector_refuses_is_moved_aside_and_the_ones_behind_arrive(
    evidence_stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = Agent(evidence_stack, tmp_path / "agent", capture_content="full", content_max_bytes=30_000_000)
    try:
        with provtrace.decision("dump the table", trigger="test", actor="agent") as big:
            with provtrace.tool_call("dump") as tool:
                tool.record_input({"table": "all"})
                # 25 MB that gzip halves at best: over the collector's 20 MiB request limit.
                tool.record_output({"rows": secrets.token_hex(12_500_000)})
        refused_ids = {big.span_id, tool.span_id}
        later = [reference_scenario() for _ in range(5)]
        produced = refused_ids.union(*(step_ids(handles) for handles in later))
        assert not agent.handle.force_flush(timeout_s=120)  # not everything reached the collector
        counters = agent.handle.counters
        health = agent.handle.health()
    finally:
        agent.handle.shutdown(timeout_s=60)
    found = wait_arrived(evidence_stack, produced - refused_ids)
    in_jaeger_too(evidence_stack, later[-1]["decision"].trace_id, step_ids(later[-1]))
    store = RefusedSegments(tmp_path / "agent" / "spool")
    (refusal,) = store.list()
    kept = {r.span_id for r in Archive(store.directory).records()}
    assert refused_ids <= kept and not refused_ids & arrived(evidence_stack, refused_ids)
    assert "HTTP 400" in refusal.reason and refusal.sink == "otlp"
    assert counters["segments_refused"] == 1 and counters["spans_lost"] == 0
    assert health.ok and any("refused" in w for w in health.warnings)
    assert {stat_mode(store.directory), stat_mode(refusal.segment)} == {0o700, 0o600}
    monkeypatch.setenv("PROVTRACE_SPOOL_DIR", str(tmp_path / "agent" / "spool"))
    monkeypatch.setenv("PROVTRACE_ARCHIVE_DIR", str(tmp_path / "agent" / "sent"))
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert cli(["doctor"]) == 1
    doctor = capsys.readouterr().out
    assert "FAIL  refused segments: 1 segment(s)" in doctor and "HTTP 400" in doctor
    report(
        "refused-segment",
        produced=len(produced),
        arrived=len(found),
        refused_kept=len(refused_ids & kept),
        lost=counters["spans_lost"],
    )


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777

"""The progress log and recovery from it, in process: what reaches the log as spans start and end,
what a dead stream's log is recovered as, and what verify says of a dead stream.

(The same against real processes killed with SIGKILL: tests/integration/test_crash_evidence.py.)
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider
from opentelemetry.trace import format_span_id, format_trace_id, set_span_in_context

import provtrace
from provtrace import conventions as c
from provtrace.cli.main import main as cli
from provtrace.counters import Counters
from provtrace.export.archive import ArchiveSink
from provtrace.integrity import Sealer, write_key_pair
from provtrace.keyring import Keys
from provtrace.model import SpanRecord
from provtrace.otlpjson import dumps_line, loads_line
from provtrace.progress import ProgressLog, progress_files, read_progress
from provtrace.records import to_record
from provtrace.recovery import recover, report, skip_archived
from provtrace.sealing import Verdicts, seal_segment
from provtrace.spool import Spool
from provtrace.testing import make_recorded
from provtrace.testing.canary import CanaryScan
from provtrace.verify import STREAM_DIED, STREAM_LIVE, UNFINISHED_DECISION
from provtrace.verify_streams import verify_stream

CANARY = "cnry-progress-Q8vL2xT5"


class Spans:
    """Real SDK spans written to a progress log as a processor would."""

    def __init__(self, log: ProgressLog) -> None:
        self.log = log
        self.tracer = TracerProvider().get_tracer("test")

    def start(self, name: str, parent: Span | None = None) -> Span:
        context = set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(name, context=context)
        assert isinstance(span, Span)
        self.log.started(span, (parent or span).context.span_id)
        return span

    def end(self, span: Span, root: Span) -> ReadableSpan:
        span.end()
        self.log.ended(span, root.context.span_id)
        return span


def new_log(directory: Path, **options: int) -> ProgressLog:
    errors: list[str] = []
    directory.mkdir(exist_ok=True)
    log = ProgressLog(
        directory, "dead@host/1/abcd", {}, on_error=lambda where, exc: errors.append(where), **options
    )
    assert errors == []
    return log


def test_a_decision_cut_short_is_recovered_as_unfinished_with_its_last_step(tmp_path: Path) -> None:
    spans = Spans(new_log(tmp_path))
    root = spans.start("decision contain")
    tool = spans.end(spans.start("tool_call lookup", root), root)
    approval = spans.end(spans.start("approval CHG-42", root), root)
    action = spans.start("action firewall.open", root)
    spans.log.flush()  # what the guard does before the action runs
    recovery = recover(tmp_path)
    assert recovery is not None and recovery.died
    (segment,) = recovery.segments
    assert segment.reason == c.SEAL_REASON_UNFINISHED
    assert [r.span_id for r in segment.records] == [
        format_span_id(s.context.span_id) for s in (tool, approval)
    ]
    assert set(segment.open_span_ids) == {format_span_id(s.context.span_id) for s in (root, action)}
    (decision,) = recovery.decisions
    assert decision.trace_id == format_trace_id(root.context.trace_id) and not decision.finished
    assert decision.last_step.startswith(f"approval CHG-42 ({format_span_id(approval.context.span_id)})")
    assert segment.seal_attributes[c.SEAL_RECOVERED_FROM] == "dead@host/1/abcd"
    counters = Counters()
    report(recovery, counters, sealed_by="next")
    assert counters.snapshot()["decisions_unfinished"] == 1
    assert counters.snapshot()["streams_died"] == 1


def test_spans_marked_done_or_already_in_the_journal_are_not_sealed_again(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    spans = Spans(log)
    root = spans.start("decision")
    first = spans.end(spans.start("tool_call a", root), root)
    second = spans.end(spans.start("tool_call b", root), root)
    third = spans.end(spans.start("tool_call c", root), root)
    spans.end(root, root)
    log.done([format_span_id(first.context.span_id)])
    (tmp_path / "journal-00000001.jsonl").write_text(dumps_line([to_record(second, {})[0]]))
    recovery = recover(tmp_path)
    assert recovery is not None
    (segment,) = recovery.segments
    assert segment.reason == c.SEAL_REASON_RECOVERED  # the decision ended; only its sealing was cut
    assert {r.span_id for r in segment.records} == {format_span_id(s.context.span_id) for s in (third, root)}
    assert recovery.already_spooled == 1


def test_a_closed_log_with_nothing_outstanding_is_removed_and_a_dead_idle_stream_is_named(
    tmp_path: Path,
) -> None:
    log = new_log(tmp_path / "closed")
    spans = Spans(log)
    root = spans.start("decision")
    spans.end(root, root)
    log.done([format_span_id(root.context.span_id)])
    log.close()
    assert progress_files(tmp_path / "closed") == []
    idle = new_log(tmp_path / "idle")
    assert idle.outstanding == 0
    recovery = recover(tmp_path / "idle")
    assert recovery is not None and recovery.died and recovery.decisions == ()
    (marker,) = recovery.segments
    assert marker.records == () and marker.seal_attributes[c.SEAL_RECOVERED_FROM] == "dead@host/1/abcd"


def test_rotation_carries_open_spans_and_removes_finished_files(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_file_bytes=4096)
    spans = Spans(log)
    long_running = spans.start("decision long")
    for index in range(40):
        root = spans.start(f"decision {index}")
        spans.end(root, root)
        log.done([format_span_id(root.context.span_id)])
    files = progress_files(tmp_path)
    assert 1 <= len(files) <= 2  # older files went once nothing in them was outstanding
    progress = read_progress(tmp_path)
    assert format_span_id(long_running.context.span_id) in progress.started
    assert log.outstanding == 1


def test_a_span_whose_end_could_not_be_written_is_no_longer_outstanding_once_spooled(
    tmp_path: Path,
) -> None:
    log = new_log(tmp_path)
    spans = Spans(log)
    root = spans.start("decision")  # its start line is written
    current = log._path
    assert current is not None
    current.unlink()
    current.mkdir()  # every write fails from here (EISDIR): the end line is lost
    spans.end(root, root)
    assert log.problem and log.outstanding == 1
    log.done([format_span_id(root.context.span_id)])  # sealed and in the spool all the same
    assert log.outstanding == 0
    assert log.problem == ""  # nothing a crash could lose is left


def test_a_torn_last_line_is_counted_not_fatal(tmp_path: Path) -> None:
    spans = Spans(new_log(tmp_path))
    root = spans.start("decision")
    spans.end(spans.start("tool_call a", root), root)
    (path,) = progress_files(tmp_path)
    with open(path, "ab") as handle:
        handle.write(b'end\t0123456789abcdef\t\t{"resourceSpans":[{"reso')
    recovery = recover(tmp_path)
    assert recovery is not None and recovery.unreadable_lines == 1
    assert len(recovery.segments[0].records) == 1


def test_verify_reports_a_dead_stream_and_its_unfinished_decision(tmp_path: Path) -> None:
    spans = Spans(new_log(tmp_path))
    root = spans.start("decision")
    spans.end(spans.start("tool_call a", root), root)
    recovery = recover(tmp_path)
    assert recovery is not None
    sealer = Sealer("next@host/2/ef01", None, heartbeat_interval_s=60, resource={})
    seals = [
        seal_segment(
            segment,
            verdicts=Verdicts(completeness=c.MODE_ANNOTATE),
            sealer=sealer,
            quarantine=lambda *_: "",
            resource={},
            now_ns=10**18,
        )
        for segment in recovery.segments
    ]
    records = [r for sealed in seals for line in [sealed.line] for r in _records(line)]
    found = verify_stream(records, Keys({}, False), now_ns=10**18)
    by_kind = {f.kind: f for f in found.findings}
    assert not found.ok
    assert by_kind[STREAM_DIED].stream == "dead@host/1/abcd"
    assert by_kind[UNFINISHED_DECISION].trace_id == format_trace_id(root.context.trace_id)
    assert "tool_call a" in by_kind[UNFINISHED_DECISION].message
    assert all(f.stream != "dead@host/1/abcd" for f in found.findings if f.kind == STREAM_LIVE)


def _records(line: str) -> list[SpanRecord]:
    return loads_line(line)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("capture", ["none", "digest", "redacted", "full"])
def test_the_progress_log_of_an_open_decision_holds_no_secret_and_is_owner_only(
    tmp_path: Path, capture: str, umask_zero: None, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "state" / "keys" / "agent.key"
    write_key_pair(key, tmp_path / "agent.pub")
    recorded = make_recorded(tmp_path / "state" / "home", capture_content=capture, signing_key=key)
    try:
        with provtrace.decision("canary", trigger="test", actor="agent", nhi="svc"):
            with provtrace.secret_fetch(store="vault", ref="kv/canary", nhi="svc") as s:
                token = s.record_value(CANARY)
            with provtrace.tool_call("http") as tool:
                tool.record_input({"url": f"https://api/x?token={token}"})
                tool.record_output(f"echo {token}")
                tool.set_attribute("user.raw", f"raw {token}")
            with provtrace.action(f"deploy {token}", target="y", params={"auth": token}):
                spool = recorded.handle.pipeline.spool.directory
                files = progress_files(spool)
                assert files and read_progress(spool).ended  # the ended steps are on disk now
                scan = CanaryScan(lambda: caplog.text).watch(spool)
                scan.assert_absent(CANARY)
                for path in [spool, *spool.rglob("*")]:
                    mode = stat.S_IMODE(path.stat().st_mode)
                    assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    finally:
        recorded.handle.shutdown(timeout_s=30)
    state = [tmp_path / "state", *(tmp_path / "state").rglob("*")]
    assert any(p.name.endswith(".checkpoint") for p in state) and any(p.suffix == ".jsonl" for p in state)
    for path in state:  # keys, archive, checkpoints, spool, quarantine
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_an_existing_directory_keeps_the_mode_its_owner_gave_it(tmp_path: Path, umask_zero: None) -> None:
    shared = tmp_path / "shared-archive"
    shared.mkdir(mode=0o750)
    recorded = make_recorded(tmp_path / "home", archive_dir=shared)
    with provtrace.decision("d", trigger="t", actor="a"), provtrace.tool_call("x"):
        pass
    recorded.handle.shutdown(timeout_s=30)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o750
    archived = list(shared.glob("*.jsonl"))
    assert archived and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in archived)


def test_a_batch_archived_but_not_acknowledged_before_the_kill_is_not_archived_again(tmp_path: Path) -> None:
    stream = "dead@host/1/abcd"
    spool = Spool(tmp_path / "spool", stream, ["archive"], fsync=False)
    lines = [f'{{"line": {i}}}\n' for i in range(5)]
    spool.append(lines)
    batch, _ = spool.read("archive", max_lines=3)
    ArchiveSink(tmp_path / "archive", stream).send(batch)  # then killed before spool.ack
    spool.abandon()
    adopted = Spool(tmp_path / "spool", stream, ["archive"], fsync=False, directory=spool.directory)
    assert skip_archived(adopted, tmp_path / "archive") == 3
    assert adopted.read("archive")[0] == lines[3:]
    assert skip_archived(adopted, tmp_path / "archive") == 0  # the rest was never archived


def test_a_progress_log_that_cannot_be_written_shows_in_health(tmp_path: Path) -> None:
    recorded = make_recorded(tmp_path)
    try:
        log = recorded.handle.pipeline.progress_log
        assert recorded.handle.health().ok
        current = log._path
        assert current is not None
        current.unlink()
        current.mkdir()  # the log's file is now a directory: every write fails (EISDIR)
        with provtrace.decision("d", trigger="t", actor="a"):
            pass
        health = recorded.handle.health()
        assert not health.ok
        assert any("progress log" in problem for problem in health.problems)
        assert recorded.handle.counters["recording_errors"] >= 1
    finally:
        recorded.handle.shutdown(timeout_s=30)


def test_verify_reads_hostile_progress_logs_without_breaking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Progress logs are input too: garbage, control characters and ids of any shape give
    findings on escaped lines, never a traceback; a spool that is not a directory is one line."""
    recorded = make_recorded(tmp_path / "agent")
    with provtrace.decision("d", trigger="t", actor="a"):
        pass
    recorded.handle.shutdown(timeout_s=30)
    spool = tmp_path / "spool"
    for name, data in {
        "random": os.urandom(4096),
        "forged": b"stream\tevil\x1b[31m\nstart\taa\tbb\tcc\tdd\nstart\t"
        + b"ab" * 16
        + b"\t"
        + b"cd" * 8
        + b"\t"
        + b"cd" * 8
        + b"\tname \x1b]0;pwned\x07\nend\tzz\t\t{}\nend\t"
        + b"cd" * 8
        + b"\t\t[1,2]\ndone\t,x,\n",
    }.items():
        (spool / name).mkdir(parents=True)
        (spool / name / "lock").touch()
        (spool / name / "progress-00000001.log").write_bytes(data)
    code = cli(
        ["verify", "--stream", "--archive", str(tmp_path / "agent" / "archive"), "--spool", str(spool)]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "\x1b" not in out and "\x07" not in out
    assert "stream_died" in out and "unfinished_decision" in out and "\\x1b" in out
    assert (
        cli(
            [
                "verify",
                "--stream",
                "--archive",
                str(tmp_path / "agent" / "archive"),
                "--spool",
                str(spool / "random" / "lock"),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.startswith("provtrace: error: spool directory")


def test_a_value_fetched_as_a_secret_later_is_taken_out_of_the_progress_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The sealer scrubs a value tainted after the span holding it ended; so must the progress
    log, which wrote that span already."""
    late = "late-secret-" + os.urandom(12).hex()
    recorded = make_recorded(tmp_path, capture_content="full")
    try:
        with provtrace.decision("d", trigger="t", actor="a"):
            with provtrace.tool_call("lookup") as tool:
                tool.record_output({"found": late})
            spool = recorded.handle.pipeline.spool.directory
            assert CanaryScan().watch(spool).leaks(late)  # before it is known to be a secret
            with provtrace.secret_fetch(store="vault", ref="kv/late", nhi="svc") as s:
                s.record_value(late)
            CanaryScan(lambda: caplog.text).watch(spool).assert_absent(late)
            assert read_progress(spool).ended  # still readable after the rewrite
    finally:
        recorded.handle.shutdown(timeout_s=30)
    CanaryScan(lambda: caplog.text).watch(tmp_path).assert_absent(late)


def test_names_cannot_forge_lines_of_the_progress_log(tmp_path: Path) -> None:
    """A span name or a field name comes from the agent's input (a tool a model chose): a line
    break in it must not write a ``done`` or ``closed`` line that would hide evidence."""
    spans = Spans(
        new_log(
            tmp_path,
        )
    )
    root = spans.start("decision")
    tool = spans.start("x\ndone\t" + format_span_id(root.context.span_id) + "\nclosed\tnobody\n", root)
    spans.end(tool, root)
    recovery = recover(tmp_path)
    assert recovery is not None and recovery.died and recovery.unreadable_lines == 0
    (segment,) = recovery.segments
    assert [r.span_id for r in segment.records] == [format_span_id(tool.context.span_id)]
    assert format_span_id(root.context.span_id) in segment.open_span_ids


def test_line_separators_in_a_record_are_escaped_in_the_progress_log(tmp_path: Path) -> None:
    spans = Spans(new_log(tmp_path))
    root = spans.start("decision")
    tool = spans.start("tool_call lookup", root)
    tool.set_attribute("provenance.output.content", "a\u2028b\u2029c\u0085d")
    spans.end(tool, root)
    (path,) = progress_files(tmp_path)
    data = path.read_bytes()
    assert not any(raw.encode() in data for raw in ("\u2028", "\u2029", "\u0085"))
    assert b"\\u2028" in data and b"\\u0085" in data
    (segment,) = recover(tmp_path).segments  # type: ignore[union-attr]
    (record,) = segment.records
    assert record.attributes["provenance.output.content"] == "a\u2028b\u2029c\u0085d"


def test_on_an_event_loop_the_log_is_written_by_its_own_thread_and_the_guard_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import threading

    writers: list[int] = []
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if b"marker-ev7" in data:
            writers.append(threading.get_ident())
        return real_write(fd, data)

    recorded = make_recorded(tmp_path)
    spool = recorded.handle.pipeline.spool.directory

    async def agent() -> int:
        monkeypatch.setattr(os, "write", write)
        with provtrace.decision("d", trigger="t", actor="a"):
            with provtrace.tool_call("lookup") as tool:
                tool.record_output({"rules": ["marker-ev7"]})
                await asyncio.sleep(0)
            recorded.handle.pipeline.processor.tracks(0)  # what the guard does before an action
            assert b"marker-ev7" in b"".join(p.read_bytes() for p in progress_files(spool))
        return threading.get_ident()

    try:
        loop_thread = asyncio.run(agent())
    finally:
        monkeypatch.undo()
        recorded.handle.shutdown(timeout_s=30)
    assert writers and loop_thread not in writers


def test_done_lines_are_written_when_the_writer_thread_is_already_gone(tmp_path: Path) -> None:
    """At interpreter exit concurrent.futures stops its threads before atexit handlers (the
    distro's shutdown) run: the last done lines must still be written, or the next start would
    seal those spans again."""
    import asyncio

    log = new_log(tmp_path)
    spans = Spans(log)

    async def on_a_loop() -> Span:
        root = spans.start("decision")
        spans.end(root, root)
        return root

    root = asyncio.run(on_a_loop())
    log._writer.shutdown(wait=True)  # what interpreter exit does before atexit
    log.done([format_span_id(root.context.span_id)])
    assert log.outstanding == 0
    assert format_span_id(root.context.span_id) in read_progress(tmp_path).done

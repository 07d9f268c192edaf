"""The spool: durable, acknowledged per sink, bounded batches, and robust to torn writes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from provtrace.model import SpanRecord
from provtrace.otlpjson import dumps_line
from provtrace.spool import Spool
from provtrace.testing import make_recorded, run_python


def line(tag: str, size: int = 10) -> str:
    return f'{{"tag":"{tag}","pad":"{"x" * size}"}}\n'


def test_each_sink_acknowledges_on_its_own(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "s", ["archive", "otlp"], fsync=False)
    spool.append([line("a"), line("b")])
    lines, position = spool.read("archive")
    assert [text[:12] for text in lines] == ['{"tag":"a","', '{"tag":"b","']
    spool.ack("archive", position)
    assert spool.read("archive")[0] == []
    assert len(spool.read("otlp")[0]) == 2
    assert spool.pending()


def test_batches_are_bounded_in_bytes_but_never_empty(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "s", ["otlp"], fsync=False)
    spool.append([line("big", 5000), line("small"), line("small2")])
    first, position = spool.read("otlp", max_bytes=100)
    assert len(first) == 1  # the first line always goes, even over the budget
    spool.ack("otlp", position)
    second, position = spool.read("otlp", max_bytes=100)
    assert len(second) == 2
    spool.ack("otlp", position)
    assert not spool.pending()


def test_journal_survives_the_process_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    first = Spool(tmp_path, "s", ["archive"], fsync=False, max_file_bytes=1)
    first.append([line("one")])
    first.append([line("two")])  # a second journal file (the first is over its size)
    first.close()
    journals = sorted((tmp_path / "s").glob("journal-*.jsonl"))
    assert len(journals) == 2
    with journals[0].open("a") as handle:
        handle.write('{"torn')  # a crash in the middle of a write
    (adopted,) = Spool.adopt_orphans(tmp_path, tmp_path / "other", ["archive"])
    assert adopted.torn_records == 1  # cut back on open: it never blocks what follows
    lines, position = adopted.read("archive")
    assert [text[:14] for text in lines] == ['{"tag":"one","', '{"tag":"two","']
    adopted.ack("archive", position)
    assert not adopted.pending()


def test_a_write_cut_short_leaves_no_partial_record_and_the_next_one_follows(tmp_path: Path) -> None:
    # A real short write: the file size limit (RLIMIT_FSIZE) cuts the second record (smaller than
    # a write buffer, so a buffered writer would keep its tail and fail again cutting back) part-way,
    # as a full disk does; in a process of its own, so that the limit touches nothing else.
    program = f"""
import json, resource, signal
from pathlib import Path
from provtrace.spool import Spool, SpoolError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
spool = Spool(Path({str(tmp_path)!r}), "s", ["archive"], fsync=False)
spool.append(['{{"n":1}}\\n'])
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
try:
    spool.append(['{{"n":2,"pad":"' + "x" * 5000 + '"}}\\n'])
    failed = ""
except SpoolError as exc:
    failed = str(exc)
size = spool.directory.joinpath("journal-00000001.jsonl").stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
spool.append(['{{"n":3}}\\n'])
lines, _ = spool.read("archive")
print(json.dumps({{"failed": failed, "size_after_failure": size, "lines": lines}}))
"""
    result = run_python(program, tmp_path)
    outcome = json.loads(result.stdout)
    assert "File too large" in outcome["failed"]
    assert outcome["size_after_failure"] == len('{"n":1}\n')  # the torn part was cut back
    assert outcome["lines"] == ['{"n":1}\n', '{"n":3}\n']


def test_a_journal_delivered_to_its_end_is_replaced_so_the_disk_holds_only_the_undelivered(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, "s", ["archive", "otlp"], fsync=False, compact_bytes=2000)
    record = line("r", 500)
    for _ in range(100):
        spool.append([record, record])
        for sink in ("archive", "otlp"):
            lines, position = spool.read(sink)
            assert len(lines) == 2
            spool.ack(sink, position)
        on_disk = sum(p.stat().st_size for p in spool.directory.glob("journal-*.jsonl"))
        assert on_disk < 2000 + 2 * len(record)  # 100 rounds wrote 100 KiB; none of it stays
    assert not spool.pending() and spool.pending_bytes == 0
    spool.append([line("undelivered")])
    spool.ack("archive", spool.read("archive")[1])
    assert spool.pending_bytes == len(line("undelivered"))  # otlp still lacks it
    spool.close()
    reopened = Spool(tmp_path, "s", ["archive", "otlp"], fsync=False)
    assert reopened.read("archive")[0] == []
    assert reopened.read("otlp")[0] == [line("undelivered")]


def test_a_journal_started_just_before_a_kill_is_not_left_pending_forever(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "s", ["archive"], fsync=False)
    spool.append([line("a"), line("b")])
    spool.ack("archive", spool.read("archive")[1])
    # Killed between creating the next journal and recording the cursor in it (compaction).
    (spool.directory / "journal-00000002.jsonl").touch()
    spool.close()
    adopted = Spool(tmp_path, "s", ["archive"], fsync=False)
    assert not adopted.pending()
    assert adopted.pending_bytes == 0
    adopted.append([line("c")])
    lines, position = adopted.read("archive")
    assert [text[:12] for text in lines] == ['{"tag":"c","']
    adopted.ack("archive", position)
    assert not adopted.pending()


def test_spool_files_and_directories_are_owner_only(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "root", "s", ["archive"], fsync=False)
    spool.append([line("a")])
    spool.ack("archive", spool.read("archive")[1])
    created = [tmp_path / "root", *(tmp_path / "root").rglob("*")]
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in created}
    assert {name for name, mode in modes.items() if mode & 0o077} == set(), modes
    assert modes["root"] == 0o700 and modes["lock"] == 0o600 and modes["journal-00000001.jsonl"] == 0o600


def test_health_and_pending_bytes_report_an_adopted_journal_until_it_is_delivered(tmp_path: Path) -> None:
    # A journal left by a process that ended before it could deliver to its collector.
    left_line = dumps_line([SpanRecord("ab" * 16, "cd" * 8, "left", 0, 1000)])
    left = Spool(tmp_path / "spool", "ended-process", ["otlp"], fsync=False)
    left.append([left_line])
    left.close()
    recorded = make_recorded(tmp_path, archive_dir=None, endpoint="http://127.0.0.1:9")  # nothing listens
    try:
        health = recorded.handle.health()
        assert health.ok  # evidence is still persisted: the guard is not stopped by delivery
        assert health.degraded
        adopted = [w for w in health.warnings if "adopted from a process that ended" in w]
        assert adopted and f"{len(left_line)} bytes pending" in adopted[0]
        assert recorded.handle.counters["spool_pending_bytes"] >= len(left_line)
        assert not recorded.handle.force_flush(timeout_s=1)
    finally:
        assert not recorded.handle.shutdown(timeout_s=2)
    assert (tmp_path / "spool" / "ended-process" / "journal-00000001.jsonl").exists()  # kept for later


def test_a_journal_torn_by_a_crash_is_delivered_and_released_by_the_next_process(tmp_path: Path) -> None:
    whole = dumps_line([SpanRecord("ab" * 16, "cd" * 8, "before the crash", 0, 1000)])
    crashed = Spool(tmp_path / "spool", "crashed-process", ["archive"], fsync=False)
    crashed.append([whole])
    crashed.close()
    with (tmp_path / "spool" / "crashed-process" / "journal-00000001.jsonl").open("a") as handle:
        handle.write(whole[:40])  # the process died in the middle of its next write
    recorded = make_recorded(tmp_path)
    try:
        assert recorded.handle.force_flush(timeout_s=10)
        assert recorded.handle.counters["spool_torn_records"] == 1
        assert not recorded.handle.health().degraded
        assert [r.name for r in recorded.archive.records()] == ["before the crash"]
        assert not (tmp_path / "spool" / "crashed-process").exists()  # delivered, so removed
    finally:
        recorded.handle.shutdown(timeout_s=10)

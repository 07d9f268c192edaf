"""The spool: durable, acknowledged per sink, bounded batches, and robust to torn writes."""

from __future__ import annotations

from pathlib import Path

from provtrace.spool import Spool


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

"""The archive reader: every ``*.jsonl`` file under a directory, as the Collector's file exporter
or provtrace's embedded archive wrote them."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from provtrace.errors import InputError
from provtrace.jsonshape import ShapeError
from provtrace.model import SpanRecord
from provtrace.otlpjson import loads_line
from provtrace.readers.base import Found, TraceQuery, dedupe, newest_first

MAX_LINE_BYTES = 256 * 1024 * 1024


def archive_lines(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """The non-blank lines of one file with their numbers, split on "\\n" only: the Collector's
    file exporter writes U+2028, U+2029 and U+0085 raw inside strings, and str.splitlines() would
    cut a line there. Lines are bytes: one that is not UTF-8 is unreadable, not quietly repaired. A
    line longer than ``max_line_bytes`` is skipped without being held in memory and given as None."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read archive file {path}: {exc.strerror}") from exc
    with handle:
        number = 0
        while True:
            try:
                line = handle.readline(max_line_bytes + 1)
            except OSError as exc:
                raise InputError(f"cannot read archive file {path}: {exc.strerror}") from exc
            if not line:
                return
            number += 1
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                _skip_rest_of_line(handle)
                yield number, None
            elif line.strip(b" \t\r\n"):
                yield number, line


def _skip_rest_of_line(handle: BinaryIO) -> None:
    while True:
        chunk = handle.readline(1024 * 1024)
        if not chunk or chunk.endswith(b"\n"):
            return


class ArchiveSource:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise InputError(f"archive directory {self.directory} does not exist")
        self.description = f"archive {self.directory}"
        self._records: list[SpanRecord] | None = None
        self.conflicts: list[tuple[SpanRecord, SpanRecord]] = []
        self.lines: list[tuple[Path, int, list[SpanRecord]]] = []
        # Lines that are not OTLP/JSON (a torn or corrupted write): skipped and reported, so one
        # bad line neither hides the rest of the archive nor goes unnoticed.
        self.unreadable: list[str] = []

    def files(self) -> list[Path]:
        return sorted(p for p in self.directory.rglob("*.jsonl") if p.is_file())

    def _load(self) -> list[SpanRecord]:
        if self._records is None:
            raw: list[SpanRecord] = []
            for path in self.files():
                for number, line in archive_lines(path):
                    if line is None:
                        self.unreadable.append(f"{path}:{number}: longer than {MAX_LINE_BYTES} bytes")
                        continue
                    try:
                        records = loads_line(line)
                    except ShapeError as exc:
                        self.unreadable.append(f"{path}:{number}: not OTLP/JSON trace data ({exc})")
                        continue
                    self.lines.append((path, number, records))
                    raw.extend(records)
            self._records, self.conflicts = dedupe(raw)
        return self._records

    def all_spans(self) -> Iterable[SpanRecord]:
        return self._load()

    def trace(self, trace_id: str) -> list[SpanRecord]:
        wanted = trace_id.lower()
        return [r for r in self._load() if r.trace_id == wanted]

    def traces(self, query: TraceQuery) -> Found:
        by_trace: dict[str, list[SpanRecord]] = collections.defaultdict(list)
        for record in self._load():
            by_trace[record.trace_id].append(record)
        return newest_first(by_trace.values(), query)

    def stream_seals(self) -> Iterator[SpanRecord]:
        return (r for r in self._load() if r.is_seal)

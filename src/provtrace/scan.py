"""Reading a whole archive for ``verify --stream``: the digest of every span, the seals and
anchors in full, in one pass.

Lines are decoded by the one strict reader every command uses (``otlpjson.loads_line``): a
second, faster decoder would be a second opinion on what a line says, and an attacker's line that
reads one way here and another way in ``reconstruct`` is exactly what verification must not
allow. The speed comes from elsewhere: the canonical span view is written by orjson
(``spanview``), and the garbage collector is paused while reading (the decoded lines hold no
reference cycles), which halves the time on large archives.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from provtrace.errors import InputError
from provtrace.model import SpanRecord
from provtrace.otlpjson import loads_line
from provtrace.spanview import span_digest
from provtrace.verify_time import timed


@dataclasses.dataclass(frozen=True)
class Entry:
    """A span that seals cover, as verification needs it."""

    trace_id: str
    span_id: str
    name: str
    digest: str


@dataclasses.dataclass
class Scan:
    entries: list[Entry] = dataclasses.field(default_factory=list)
    records: list[SpanRecord] = dataclasses.field(default_factory=list)  # seals and anchors
    # seal span ids in stored order, per file: each file has one writer, whose order means something
    order: list[list[str]] = dataclasses.field(default_factory=list)
    timed: list[SpanRecord] = dataclasses.field(default_factory=list)  # for verify_time.check_span_times
    conflicts: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    unreadable: list[str] = dataclasses.field(default_factory=list)
    duplicates: int = 0  # exact copies dropped (delivery is at least once)


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def scan_files(files: Sequence[Path], *, on_seal: Callable[[SpanRecord], object] | None = None) -> Scan:
    """Every span of the files, deduplicated; ``on_seal`` sees each seal as soon as it is read
    (so its signature check can start while the rest is still being read)."""
    scan = Scan()
    seen_entries: dict[tuple[str, str], str] = {}
    seen_records: dict[tuple[str, str], SpanRecord] = {}
    with gc_paused():
        for path in files:
            scan.order.append([])
            for number, line in enumerate(path.read_bytes().split(b"\n"), 1):  # lines end at \n only
                if line.strip():
                    _scan_line(path, number, line, scan, seen_entries, seen_records, on_seal)
    return scan


def _scan_line(
    path: Path,
    number: int,
    line: bytes,
    scan: Scan,
    seen_entries: dict[tuple[str, str], str],
    seen_records: dict[tuple[str, str], SpanRecord],
    on_seal: Callable[[SpanRecord], object] | None,
) -> None:
    try:
        records = loads_line(line)  # the one (strict) reader every command uses
    except InputError as exc:
        scan.unreadable.append(f"{path}:{number}: not OTLP/JSON trace data ({exc})")
        return
    for record in records:
        if not (record.is_seal or record.is_anchor):
            entry = Entry(record.trace_id, record.span_id, record.name, span_digest(record))
            key = (entry.trace_id, entry.span_id)
            first = seen_entries.get(key)
            if first is None:
                seen_entries[key] = entry.digest
                scan.entries.append(entry)
                if timed(record):
                    scan.timed.append(record)
            elif first != entry.digest:
                scan.conflicts.append(key)
            else:
                scan.duplicates += 1
            continue
        key = (record.trace_id, record.span_id)
        known = seen_records.get(key)
        if known is None:
            seen_records[key] = record
            scan.records.append(record)
            if record.is_seal:
                scan.order[-1].append(record.span_id)
                if on_seal is not None:
                    on_seal(record)
        elif known != record:
            scan.conflicts.append(key)
        else:
            scan.duplicates += 1

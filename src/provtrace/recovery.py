"""Recovery: what a dead process's progress log holds becomes sealed evidence and findings.

The process that adopts a dead process's spool reads its progress log (``provtrace.progress``):
spans that ended but never reached the spool are sealed again in the adopting stream, one
segment per decision, with reason ``unfinished`` when the decision's root started and never
ended (its open spans listed, so the completeness check says UNFINISHED) or ``recovered`` when
it ended but was not yet spooled. Each seal names the dead stream and the last step recorded, so
``verify --stream`` reports ``stream_died`` and ``unfinished_decision`` from the evidence alone.
Spans already in the dead stream's journal are not sealed twice: replay stays idempotent.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from provtrace import conventions as c
from provtrace.counters import Counters
from provtrace.errors import InputError
from provtrace.integrity import random_trace_id
from provtrace.model import AttrValue, SpanRecord
from provtrace.otlpjson import loads_line
from provtrace.progress import Progress, progress_files, read_progress
from provtrace.records import Segment
from provtrace.spool import Spool

logger = logging.getLogger("provtrace")


@dataclasses.dataclass(frozen=True)
class Unfinished:
    """A decision of a dead stream, as the adopting process reports it."""

    stream: str
    trace_id: str
    root_span_id: str
    finished: bool  # the decision ended; only its sealing was cut short
    recovered_spans: int
    last_step: str


@dataclasses.dataclass(frozen=True)
class Recovery:
    """The segments to seal for one dead stream, what to report, and the files to remove once
    the seals are in the spool."""

    stream: str
    died: bool
    segments: tuple[Segment, ...]
    decisions: tuple[Unfinished, ...]
    files: tuple[Path, ...]
    already_spooled: int
    unreadable_lines: int

    @property
    def spans(self) -> int:
        return sum(len(segment.records) for segment in self.segments)


def recover(directory: Path) -> Recovery | None:
    """The recovery of an adopted spool directory, or None when it holds no progress log."""
    files = tuple(progress_files(directory))
    if not files:
        return None
    progress = read_progress(directory)
    stream = progress.stream_id or directory.name
    pending = {span_id: v for span_id, v in progress.ended.items() if span_id not in progress.done}
    spooled: dict[str, SpanRecord] = {}
    if pending:
        spooled = _journal_records(directory, {record.trace_id for _, _, record in pending.values()})
    skipped = sum(1 for span_id in pending if span_id in spooled)
    pending = {span_id: v for span_id, v in pending.items() if span_id not in spooled}
    still_open = {span_id: v for span_id, v in progress.started.items() if span_id not in progress.ended}
    roots: dict[tuple[str, str], list[tuple[tuple[str, ...], SpanRecord]]] = collections.defaultdict(list)
    for root_id, leaks, record in pending.values():
        roots[(record.trace_id, root_id)].append((leaks, record))
    opened: dict[tuple[str, str], list[tuple[str, str]]] = collections.defaultdict(list)
    for span_id, (trace_id, root_id, name) in still_open.items():
        opened[(trace_id, root_id)].append((span_id, name))
    segments: list[Segment] = []
    decisions: list[Unfinished] = []
    for key in sorted(roots.keys() | opened.keys()):
        segment, decision = _decision(stream, key, roots.get(key, []), opened.get(key, []), progress, spooled)
        segments.append(segment)
        decisions.append(decision)
    died = not progress.closed
    if died and not segments:
        segments.append(_died_marker(stream))
    return Recovery(stream, died, tuple(segments), tuple(decisions), files, skipped, progress.unreadable)


def _decision(
    stream: str,
    key: tuple[str, str],
    ended: list[tuple[tuple[str, ...], SpanRecord]],
    still_open: list[tuple[str, str]],
    progress: Progress,
    spooled: dict[str, SpanRecord],
) -> tuple[Segment, Unfinished]:
    trace_id, root_id = key
    records = sorted((record for _, record in ended), key=lambda r: (r.end_ns, r.span_id))
    finished = not still_open
    steps = [f"{r.step or r.name} ({r.span_id})" for r in records[-1:]]
    steps += [f"{name} ({span_id}, started, never ended)" for span_id, name in still_open[-1:]]
    last_step = "; ".join(steps)
    open_ids = tuple(sorted(span_id for span_id, _ in still_open))
    earlier = {r.span_id: r for r in spooled.values() if r.trace_id == trace_id}
    attributes: dict[str, AttrValue] = {c.SEAL_RECOVERED_FROM: stream, c.SEAL_LAST_STEP: last_step}
    segment = Segment(
        trace_id=trace_id,
        records=tuple(records),
        reason=c.SEAL_REASON_RECOVERED if finished else c.SEAL_REASON_UNFINISHED,
        open_span_ids=open_ids,
        leaks={r.span_id: leaks for leaks, r in ended if leaks},
        earlier={span_id: r for span_id, r in earlier.items() if r.step is not None},
        known_ids=frozenset(earlier) | frozenset(progress.done),
        seal_attributes=attributes,
    )
    return segment, Unfinished(stream, trace_id, root_id, finished, len(records), last_step)


def _died_marker(stream: str) -> Segment:
    """A stream that died between decisions still gets a seal naming it, so verify does not take
    its silence for a live stream."""
    return Segment(
        trace_id=random_trace_id(),
        records=(),
        reason=c.SEAL_REASON_RECOVERED,
        seal_attributes={c.SEAL_RECOVERED_FROM: stream, c.SEAL_LAST_STEP: ""},
    )


def _journal_records(directory: Path, traces: set[str]) -> dict[str, SpanRecord]:
    """The spans of ``traces`` the dead stream's journal already holds (sealed and spooled before
    the crash; the done line may not have made it)."""
    found: dict[str, SpanRecord] = {}
    for path in sorted(directory.glob("journal-*.jsonl")):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for line in data.split(b"\n"):
            if not line.strip() or not any(t.encode() in line for t in traces):
                continue
            try:
                records = loads_line(line)
            except InputError:
                continue
            found.update((r.span_id, r) for r in records if r.trace_id in traces)
    return found


def report(recovery: Recovery, counters: Counters, *, sealed_by: str) -> None:
    """Count and log what the dead stream left: one ERROR per decision that never finished."""
    counters.add("spans_recovered", recovery.spans)
    if recovery.died:
        counters.add("streams_died")
        logger.error(
            "provtrace stream %s died without shutting down; %d span(s) it never spooled were "
            "recovered from its progress log and sealed by %s",
            recovery.stream,
            recovery.spans,
            sealed_by,
        )
    ended = [d for d in recovery.decisions if d.finished]
    if ended:
        logger.warning(
            "provtrace recovered %d decision(s) of stream %s that ended but were not yet spooled "
            "(%d span(s); traces %s)",
            len(ended),
            recovery.stream,
            sum(d.recovered_spans for d in ended),
            ", ".join(d.trace_id for d in ended[:5]) + (", ..." if len(ended) > 5 else ""),
        )
    for decision in recovery.decisions:
        if decision.finished:
            continue
        counters.add("decisions_unfinished")
        logger.error(
            "provtrace unfinished decision %s of stream %s: it started and never finished; "
            "%d finished step(s) recovered and sealed as unfinished; last step recorded: %s",
            decision.trace_id,
            recovery.stream,
            decision.recovered_spans,
            decision.last_step,
        )
    if recovery.unreadable_lines:
        logger.warning(
            "provtrace progress log of %s: %d line(s) unreadable (cut short by the crash or damaged)",
            recovery.stream,
            recovery.unreadable_lines,
        )


def settle(recovery: Recovery) -> None:
    """The seals of the recovery are in the spool: its progress log has done its work."""
    for path in recovery.files:
        with contextlib.suppress(OSError):
            path.unlink()


def skip_archived(orphan: Spool, archive_dir: Path, sink: str = "archive") -> int:
    """Lines of an adopted journal that its dead owner appended to its archive file but did not
    live to acknowledge (killed between the two) are acknowledged now, not appended again: the
    archive's last bytes are exactly the batch it sent. Returns how many lines were skipped."""
    parts = sorted(archive_dir.glob(f"provtrace-{orphan.directory.name}.*.jsonl"))
    if not parts or sink not in orphan.sinks:
        return 0
    lines, _ = orphan.read(sink)
    if not lines:
        return 0
    data = "".join(lines).encode("utf-8")
    try:
        with open(parts[-1], "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - len(data)))
            tail = handle.read()
    except OSError:
        return 0
    for count in range(len(lines), 0, -1):
        if tail.endswith("".join(lines[:count]).encode("utf-8")):
            _, position = orphan.read(sink, max_lines=count)
            orphan.ack(sink, position)
            return count
    return 0


def dead_spools(root: Path) -> Iterator[Recovery]:
    """What the progress logs under a spool root say of processes that died and whose spool no
    process has adopted yet (their lock is free), read without changing anything: for
    ``verify --stream --spool``, on the agent's host, before the agent starts again."""
    try:
        directories = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return
    for directory in directories:
        if progress_files(directory) and _unlocked(directory / "lock"):
            recovery = recover(directory)
            if recovery is not None and (recovery.died or recovery.decisions):
                yield recovery


def _unlocked(path: Path) -> bool:
    """Whether no live process holds the spool's lock (it is taken and released at once)."""
    try:
        with open(path, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return False
    return True

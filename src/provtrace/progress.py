"""The progress log: each span's start and end reach the local disk as they happen.

Spans wait in the processor's memory until their decision ends; a process killed with ``kill -9``
in the middle of a decision (inside a guarded action, after its tool call, policy check and
approval) would take them along. So every span start (ids and name) and every span end (its
record, already scrubbed of secret values, as the spool would hold it) is written to
``progress-NNNNNNNN.log`` in the stream's spool directory with one ``write`` on an unbuffered
descriptor before ``span.end()`` returns (a decision's start is written at once; the start of a
span inside it goes with the next write, so each span costs one system call); the sealer adds a
``done`` line once a span's sealed segment is in the spool; the guard flushes the log before it
lets an action run, so a guarded action's start is on disk before its body runs. The next process
that adopts the spool (``provtrace.recovery``) seals what ended and was never spooled, and
reports every decision that started and never finished.

On an event loop's thread (asyncio agents) the writes go to the log's own writer thread instead,
in order, moments later: a disk write on the loop's thread would stall every task of the loop
(and asyncio checkers such as blockbuster rightly flag it). The guard still waits there until
everything before the action is on disk; what a kill -9 can take from an asyncio agent is the
steps of its last moments not yet written.

A write reaches the kernel, not necessarily the platter: the log survives the death of the
process, which is what it is for; the spool's fsync covers sealed evidence against power loss.
Files rotate by size; a file is removed once it and every older file hold nothing outstanding
(spans still open are carried into the new file), so the log stays as small as the work in
flight.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import threading
from asyncio import events
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.trace import format_span_id, format_trace_id

from provtrace.content import SECRETS
from provtrace.errors import InputError
from provtrace.model import AttrValue, SpanRecord
from provtrace.otlpjson import HEX_ID, dumps_line, loads_line
from provtrace.private import opener
from provtrace.records import clean_name, to_record
from provtrace.report.basics import printable
from provtrace.spool import RESERVE_BYTES

_FILE = re.compile(r"^progress-(\d{8})\.log$")
# Files are removed once nothing in them is outstanding, at rotation: small files keep the log
# near the size of what open decisions hold, even on a small spool filesystem.
DEFAULT_FILE_BYTES = 256 * 1024
IDLE_ROTATE_BYTES = 64 * 1024  # with nothing outstanding, a file past this is replaced
# The log gives way to the spool: it stops writing before the spool's own reserve is reached, so
# crash evidence never takes the space sealed segments (and delivery records) need.
SPOOL_HEADROOM_BYTES = 2 * RESERVE_BYTES
OWNER_ONLY = 0o600
MAX_TEXT = 256  # a stream id or span name read back from a log is at most this long
FLUSH_TIMEOUT_S = 10.0  # how long the guard waits on an event loop for the writer thread

# Line kinds: one tab-separated line each, the last field free text (JSON never holds a raw tab).
_APPEND = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)

STREAM, START, END, DONE, CLOSED = "stream", "start", "end", "done", "closed"


def progress_files(directory: Path) -> list[Path]:
    """The progress files of a spool directory, oldest first."""
    try:
        names = sorted(p.name for p in directory.iterdir() if _FILE.match(p.name))
    except OSError:
        return []
    return [directory / name for name in names]


class ProgressLog:
    """Writes the progress of one stream; thread-safe, and never raises into the agent (a
    failing write is counted as a recording error and logged once)."""

    def __init__(
        self,
        directory: Path,
        stream_id: str,
        resource: Mapping[str, AttrValue],
        *,
        on_error: Callable[[str, BaseException], None],
        max_file_bytes: int = DEFAULT_FILE_BYTES,
    ) -> None:
        self.directory = directory
        self.stream_id = printable(stream_id)
        self._resource = resource
        self._on_error = on_error
        self._max_file_bytes = max_file_bytes
        self._lock = threading.Lock()
        self._open: dict[str, tuple[str, str, str]] = {}  # span id -> trace id, root id, name
        self._started_in: dict[str, int] = {}  # span id -> file of its start line
        self._ended_in: dict[str, int] = {}  # span id -> file of its end line, until done
        self._outstanding: dict[int, int] = {}  # file -> lines in it still needed by recovery
        self._starts: list[str] = []  # start lines of spans inside a decision, not yet written
        self._tainted = len(SECRETS)  # secret values known when the files were last scrubbed
        self._path: Path | None = None  # the file being written; opened for each write only
        self._number = 0
        self._size = 0
        self.problem = ""  # why crash evidence is not being written, for health()
        self._closed = False
        # Writes made on behalf of an event loop's thread (its thread starts at the first one).
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="provtrace-progress")
        self._deferred = False  # once set, done() goes through the writer too, after the ends
        with self._lock:
            self._rotate()

    # --- agent side -------------------------------------------------------------------------

    def started(self, span: Span, root: int) -> None:
        ctx = span.get_span_context()
        span_id, trace_id, root_id = (
            format_span_id(ctx.span_id),
            format_trace_id(ctx.trace_id),
            format_span_id(root),
        )
        name = printable(clean_name(span.name))  # a line break in a name must not forge a line
        if _on_event_loop():
            self._defer(self._record_start, ctx.span_id == root, span_id, trace_id, root_id, name)
        else:
            self._record_start(ctx.span_id == root, span_id, trace_id, root_id, name)

    def ended(self, span: ReadableSpan, root: int) -> None:
        if _on_event_loop():
            self._defer(self._record_end, span, root)
        else:
            self._record_end(span, root)

    def flush(self) -> None:
        """Write the starts still held back (the guard calls this before an action runs); on an
        event loop, wait until the writer thread has written everything handed to it."""
        if not _on_event_loop():
            self._flush_now()
            return
        written = self._defer(self._flush_now)
        if written is None:
            self._flush_now()  # the writer is gone (interpreter exit): write here
            return
        try:
            written.result(timeout=FLUSH_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - health and the counters say it, the agent runs on
            with self._lock:
                self._fail(OSError(errno.ETIMEDOUT, f"the log's writer did not finish: {exc!r}"))

    def _record_start(self, is_root: bool, span_id: str, trace_id: str, root_id: str, name: str) -> None:
        line = f"{START}\t{trace_id}\t{span_id}\t{root_id}\t{name}\n"
        with self._lock:
            if not is_root:
                self._starts.append(line)  # goes with the next write: one system call per span
            elif not self._write(line):
                return
            self._open[span_id] = (trace_id, root_id, name)
            self._started_in[span_id] = self._number
            self._count(self._number, 1)

    def _record_end(self, span: ReadableSpan, root: int) -> None:
        try:
            record, leaked = to_record(span, self._resource)
        except Exception as exc:  # noqa: BLE001 - the sealer converts it again and reports it
            self._on_error("progress record", exc)
            return
        # The record as the spool would hold it: one line, every line break in it escaped
        # (U+2028, U+2029 and U+0085 too, which orjson leaves raw).
        encoded = dumps_line([record])[:-1]
        fields = ",".join(printable(field) for field in leaked)
        line = f"{END}\t{format_span_id(root)}\t{fields}\t{encoded}\n"
        with self._lock:
            if self._write(line):
                self._forget_start(record.span_id)
                self._ended_in[record.span_id] = self._number
                self._count(self._number, 1)

    def _flush_now(self) -> None:
        with self._lock:
            if self._starts:
                self._write("")

    def _defer(self, call: Callable[..., None], *args: Any) -> Future[None] | None:
        """``call`` on the writer thread, after everything handed to it before."""
        self._deferred = True
        try:
            return self._writer.submit(self._guarded, call, *args)
        except RuntimeError:  # closed: the processor counts what ends after shutdown as lost
            return None

    def _guarded(self, call: Callable[..., None], *args: Any) -> None:
        try:
            call(*args)
        except Exception as exc:  # noqa: BLE001 - the writer thread must live on
            self._on_error("progress log", exc)

    # --- sealer side ------------------------------------------------------------------------

    def done(self, span_ids: Iterable[str]) -> None:
        """These spans are sealed and in the spool: recovery need not look at them again."""
        ids = [span_id for span_id in span_ids if span_id]
        if not ids:
            return
        if self._deferred and self._defer(self._done_now, ids) is not None:
            return  # after the ends the writer still holds
        # Not deferred, or the writer is gone (at interpreter exit concurrent.futures stops it
        # before atexit handlers, such as the distro's shutdown, run): written here and now.
        self._done_now(ids)

    def _done_now(self, ids: list[str]) -> None:
        with self._lock:
            # Counted done even when the line cannot be written (a full disk): recovery also skips
            # spans it finds in the journal, and files that waited for a line would never go.
            self._write(f"{DONE}\t{','.join(ids)}\n")
            for span_id in ids:
                number = self._ended_in.pop(span_id, None)
                if number is not None:
                    self._count(number, -1)
                self._forget_start(span_id)  # its end line could not be written: the start stays
            if not any(self._outstanding.values()):
                if self._size > IDLE_ROTATE_BYTES:
                    self._rotate()  # nothing open: the files written so far can go
                self.problem = ""  # whatever could not be written is in the spool now
            self._remove_finished()

    @property
    def outstanding(self) -> int:
        """Lines recovery would still need: spans open, or ended and not yet in the spool."""
        with self._lock:
            return sum(self._outstanding.values())

    def close(self) -> None:
        """At shutdown: the stream closed; the log goes when nothing in it is outstanding."""
        self._writer.shutdown(wait=True)  # what it still holds is written first
        with self._lock:
            if self._closed:
                return
            self._write(f"{CLOSED}\t{self.stream_id}\n")
            self._closed = True
            if not any(self._outstanding.values()):
                for path in progress_files(self.directory):
                    with contextlib.suppress(OSError):
                        path.unlink()

    def abandon(self) -> None:
        """In a forked child: the log is the parent's; stop writing to it (without the lock,
        which a thread of the parent may have held at the fork)."""
        self._closed = True
        self._writer = ThreadPoolExecutor(max_workers=1)  # the parent's writer thread is not here
        self._writer.shutdown(wait=False)

    # --- internals (lock held) --------------------------------------------------------------

    def _write(self, line: str) -> bool:
        if self._closed or self._path is None:
            return False
        if len(SECRETS) != self._tainted:
            self._scrub_files()
            line = SECRETS.scrub(line, structural=True)
        data = "".join([*self._starts, line]).encode("utf-8", errors="surrogateescape")
        self._starts.clear()
        try:
            if self._size + len(data) > self._max_file_bytes and self._size:
                self._rotate()
            written = self._append(self._path, data)
            if written != len(data):
                raise OSError(0, f"short write ({written} of {len(data)} bytes)")
        except OSError as exc:
            self._fail(exc)
            return False
        self._size += len(data)
        self.problem = ""  # writable again: crash evidence is being kept
        return True

    def _scrub_files(self) -> None:
        """A value fetched as a secret after a span holding it was written: it is taken out of
        the files already written (and of the starts held back), as the sealer takes it out of
        the sealed segment. Long values only: a short one could match inside ids and times."""
        self._tainted = len(SECRETS)
        self._starts = [SECRETS.scrub(line, structural=True) for line in self._starts]
        self._open = {
            span_id: (trace_id, root_id, SECRETS.scrub(name, structural=True))
            for span_id, (trace_id, root_id, name) in self._open.items()
        }
        for path in progress_files(self.directory):
            try:
                text = path.read_bytes().decode("utf-8", errors="surrogateescape")
                clean = SECRETS.scrub(text, structural=True)
                if clean == text:
                    continue
                temporary = path.with_name(path.name + ".tmp")
                with open(temporary, "wb", opener=opener) as handle:
                    handle.write(clean.encode("utf-8", errors="surrogateescape"))
                os.replace(temporary, path)
                if path.name == f"progress-{self._number:08d}.log":
                    self._size = len(clean.encode("utf-8", errors="surrogateescape"))
            except OSError as exc:
                self._fail(exc)

    @staticmethod
    def _append(path: Path, data: bytes) -> int:
        """One write, on a descriptor held only for it: no file of the spool's filesystem stays
        open for writing (one that does keeps it from being remounted read-only)."""
        fd = os.open(
            path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        )
        try:
            fs = os.fstatvfs(fd)
            if fs.f_bavail * fs.f_frsize < len(data) + SPOOL_HEADROOM_BYTES:
                raise OSError(errno.ENOSPC, "no space left beside the spool's reserve")
            return os.write(fd, data)
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        """A new file, carrying the starts of spans still open (their older files can go)."""
        numbers = [int(m.group(1)) for p in progress_files(self.directory) if (m := _FILE.match(p.name))]
        number = max([self._number, *numbers]) + 1
        path = self.directory / f"progress-{number:08d}.log"
        flags = (
            os.O_WRONLY
            | os.O_CREAT
            | os.O_APPEND
            | getattr(os, "O_NOFOLLOW", 0)
            | getattr(os, "O_CLOEXEC", 0)
        )
        carried = [f"{STREAM}\t{self.stream_id}\n"]
        carried += [f"{START}\t{t}\t{s}\t{r}\t{n}\n" for s, (t, r, n) in self._open.items()]
        data = "".join(carried).encode("utf-8", errors="surrogateescape")
        try:
            fd = os.open(path, flags, OWNER_ONLY)
            try:
                os.fchmod(fd, OWNER_ONLY)
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            self._fail(exc)
            return
        self._path, self._number, self._size = path, number, len(data)
        for span_id in self._open:
            earlier = self._started_in.get(span_id)
            if earlier is not None:
                self._count(earlier, -1)
            self._started_in[span_id] = number
            self._count(number, 1)
        self._outstanding.setdefault(number, 0)
        self._remove_finished()

    def _forget_start(self, span_id: str) -> None:
        self._open.pop(span_id, None)
        number = self._started_in.pop(span_id, None)
        if number is not None:
            self._count(number, -1)

    def _count(self, number: int, delta: int) -> None:
        self._outstanding[number] = self._outstanding.get(number, 0) + delta

    def _remove_finished(self) -> None:
        """Remove the oldest files while they hold nothing outstanding (never the current one,
        and never a file with an older one still kept: its ``done`` lines answer for that one)."""
        for number in sorted(self._outstanding):
            if number >= self._number or self._outstanding[number] > 0:
                return
            with contextlib.suppress(OSError):
                (self.directory / f"progress-{number:08d}.log").unlink()
            del self._outstanding[number]

    def _fail(self, exc: OSError) -> None:
        if not self.problem:
            self.problem = (
                f"progress log in {self.directory} not writable ({exc.strerror or exc}): "
                "a crash would lose the steps of open decisions"
            )
            self._on_error("progress log", exc)


@dataclasses.dataclass
class Progress:
    """What a progress log left behind says, read back by the process that adopts it."""

    stream_id: str = ""
    closed: bool = False
    # span id -> (trace id, root id, name) of every start; -> (root id, leaks, record) of every end
    started: dict[str, tuple[str, str, str]] = dataclasses.field(default_factory=dict)
    ended: dict[str, tuple[str, tuple[str, ...], SpanRecord]] = dataclasses.field(default_factory=dict)
    done: set[str] = dataclasses.field(default_factory=set)
    unreadable: int = 0


def read_progress(directory: Path) -> Progress:
    """Every progress file of a spool directory, oldest first; a line cut short by the crash (or
    damaged) is counted, never fatal."""
    progress = Progress()
    for path in progress_files(directory):
        try:
            data = path.read_bytes()
        except OSError:
            progress.unreadable += 1
            continue
        for raw in data.split(b"\n"):
            if raw:
                _read_line(raw.decode("utf-8", errors="surrogateescape"), progress)
    return progress


def _read_line(line: str, progress: Progress) -> None:
    kind, _, rest = line.partition("\t")
    fields = rest.split("\t", 3)
    if kind == STREAM and rest and rest.isprintable() and len(rest) <= MAX_TEXT:
        progress.stream_id = rest
    elif kind == CLOSED:
        progress.closed = True
    elif kind == START and len(fields) == 4 and _ids(fields[0], fields[1], fields[2]):
        trace_id, span_id, root_id, name = fields
        progress.started[span_id] = (trace_id, root_id, printable(name)[:MAX_TEXT])
    elif kind == END and len(fields) == 3 and HEX_ID[16].fullmatch(fields[0]):
        root_id, leaks, record_line = fields
        try:
            (record,) = loads_line(record_line)
        except (InputError, ValueError):
            progress.unreadable += 1
            return
        progress.ended[record.span_id] = (root_id, tuple(x for x in leaks.split(",") if x), record)
    elif kind == DONE:
        progress.done.update(x for x in rest.split(",") if HEX_ID[16].fullmatch(x))
    else:
        progress.unreadable += 1


def _ids(trace_id: str, *span_ids: str) -> bool:
    """A log line's ids are hex of the right length (anything else was not written by provtrace)."""
    return bool(HEX_ID[32].fullmatch(trace_id)) and all(HEX_ID[16].fullmatch(s) for s in span_ids)


def _on_event_loop() -> bool:
    """Whether this thread is running an asyncio event loop (a C call, no exception)."""
    return events._get_running_loop() is not None

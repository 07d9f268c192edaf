"""Durable delivery: a write-ahead journal of sealed segments, with one cursor per sink.

A sealed segment is on disk (fsynced) before any sink sees it, and leaves the journal once every
sink has acknowledged it: a journal whose every line is delivered is replaced by a fresh one, so
the disk holds what is undelivered, not what was. Records are written whole or not at all (one
``pwrite`` loop on an unbuffered descriptor at the committed end, fsync, length checked; a failed
write is cut back), and a torn tail left by a crash is cut back when the journal is next opened.
A process that dies leaves its journal behind; the next process using the same spool directory
adopts it and delivers what is left. Delivery is at least once: readers drop exact duplicates.
Everything is created owner-only (directories 0700, files 0600).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from provtrace.private import FILE_MODE, make_dirs

logger = logging.getLogger("provtrace")

_JOURNAL = re.compile(r"^journal-(\d{8})\.jsonl$")
DEFAULT_FILE_BYTES = 1024 * 1024  # a journal lagging behind delivery starts a new file past this
COMPACT_BYTES = 64 * 1024  # a journal delivered to its end is replaced once it holds this much
DEFAULT_READ_BYTES = 4 * 1024 * 1024
MIN_FREE_BYTES = 1024 * 1024  # below this, the spool reports itself unable to persist
# Appends leave this much free: recording a delivery (a cursor file) must still be possible on a
# full disk, or nothing could be acknowledged, compacted, and so freed.
RESERVE_BYTES = 128 * 1024


class SpoolError(OSError):
    """The spool cannot persist evidence (disk full, permissions, ...)."""


@dataclasses.dataclass(frozen=True, order=True)
class Position:
    file: int
    offset: int


@dataclasses.dataclass(frozen=True)
class Entry:
    """One spooled line and the position just after it (what acknowledging it moves to)."""

    line: str
    end: Position


def file_safe(stream_id: str) -> str:
    """A stream id as a file name (streams name spool directories and archive files)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stream_id)[:120]


def _identity(directory: Path) -> tuple[int, int]:
    """Device and inode of a directory (raises OSError if it is gone or not a directory)."""
    info = os.stat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(directory))
    return info.st_dev, info.st_ino


def write_whole(fd: int, data: bytes, offset: int, *, fsync: bool = True) -> None:
    """Write ``data`` at ``offset`` and leave the file ending right after it, or raise with the
    file cut back to ``offset``: no partial record is ever left for a reader."""
    view = memoryview(data)
    written = 0
    try:
        while written < len(data):
            count = os.pwrite(fd, view[written:], offset + written)
            if count <= 0:
                raise OSError(errno.EIO, "write accepted no bytes")
            written += count
        os.ftruncate(fd, offset + len(data))  # bytes of an earlier failed write beyond the record
        if fsync:
            os.fsync(fd)
        size = os.fstat(fd).st_size
        if size != offset + len(data):
            raise OSError(errno.EIO, f"file is {size} bytes after the write, not {offset + len(data)}")
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, offset)
        raise


def write_atomic(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace ``path`` by ``data`` (owner-only): a reader sees the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        write_whole(fd, data, 0, fsync=fsync)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _cut_torn_tail(path: Path) -> int:
    """Cut the bytes after the last newline of a journal file (a record whose write was
    interrupted); returns how many were cut."""
    size = path.stat().st_size
    if size == 0:
        return 0
    fd = os.open(path, os.O_RDWR)
    try:
        end = size
        while end > 0:
            start = max(0, end - 65536)
            chunk = os.pread(fd, end - start, start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        if end < size:
            os.ftruncate(fd, end)
            os.fsync(fd)
        return size - end
    finally:
        os.close(fd)


class Spool:
    """The journal of one stream in ``root/<stream>``, locked by the process that owns it."""

    def __init__(
        self,
        root: Path,
        stream_id: str,
        sinks: Sequence[str],
        *,
        fsync: bool = True,
        max_file_bytes: int = DEFAULT_FILE_BYTES,
        compact_bytes: int = COMPACT_BYTES,
        directory: Path | None = None,
    ) -> None:
        self.root = root
        self.directory = directory or root / file_safe(stream_id)
        self.sinks = tuple(sinks)
        self._fsync = fsync
        self._max_file_bytes = max_file_bytes
        self._compact_bytes = compact_bytes
        self._lock = threading.Lock()
        try:
            make_dirs(self.directory)
            # Read-only: flock needs no write access, and no descriptor open for writing is held
            # between writes (a filesystem with one cannot be remounted read-only).
            lock_fd = os.open(self.directory / "lock", os.O_RDONLY | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise SpoolError(exc.errno, f"cannot create spool {self.directory}: {exc.strerror}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(lock_fd)
            raise SpoolError(exc.errno, f"spool {self.directory} is owned by another process") from exc
        self._lock_fd: int | None = lock_fd
        try:
            self._identity = _identity(self.directory)
            self.foreign_sinks = self._record_sinks()
            self.torn_records = self._repair()
            files = self._journal_numbers()
            self._current = files[-1] if files else 1
            self._end = self._path(self._current).stat().st_size if files else 0
            self._cursors = {sink: self._load_cursor(sink, files) for sink in self.sinks}
        except OSError as exc:
            self._release_lock()
            raise SpoolError(exc.errno, f"cannot open spool {self.directory}: {exc.strerror}") from exc

    # --- writing ----------------------------------------------------------------------------

    def append(self, lines: Sequence[str]) -> None:
        """Persist sealed segment lines, whole or not at all; returns only once they are on disk."""
        if not lines:
            return
        data = "".join(lines).encode("utf-8")
        with self._lock:
            path = self._path(self._current)
            try:
                if self._end >= self._max_file_bytes:
                    self._start_file(self._current + 1)
                    path = self._path(self._current)
                fs = os.statvfs(self.directory)
                if fs.f_bavail * fs.f_frsize < len(data) + RESERVE_BYTES:
                    reserve = f"the last {RESERVE_BYTES // 1024} KiB are kept for recording deliveries"
                    raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({reserve})")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
                try:
                    write_whole(fd, data, self._end, fsync=self._fsync)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise SpoolError(exc.errno, f"cannot write spool {path}: {exc.strerror}") from exc
            self._end += len(data)

    def probe(self, min_free_bytes: int = MIN_FREE_BYTES) -> str:
        """Why the spool could not take the next segment right now, or "" when it can: the
        directory must still be the one this process locked, writable, on a writable
        filesystem with room. A few system calls, cheap enough to run before every guarded
        action."""
        try:
            if _identity(self.directory) != self._identity:
                return f"spool directory {self.directory} was replaced or removed"
            fs = os.statvfs(self.directory)
            if fs.f_flag & os.ST_RDONLY:
                return f"spool directory {self.directory} is on a read-only filesystem"
            if not os.access(self.directory, os.W_OK):
                return f"spool directory {self.directory} is not writable"
        except OSError as exc:
            return f"spool directory {self.directory} is unusable: {exc.strerror}"
        free = fs.f_bavail * fs.f_frsize
        if free < min_free_bytes:
            return f"spool filesystem of {self.directory} is full ({free} bytes free)"
        return ""

    # --- reading and acknowledging ----------------------------------------------------------

    def read(
        self, sink: str, max_lines: int = 256, max_bytes: int = DEFAULT_READ_BYTES
    ) -> tuple[list[str], Position]:
        """Complete lines not yet acknowledged by ``sink``: at most ``max_lines`` and, past the
        first line, at most ``max_bytes`` (a collector refuses requests beyond a size)."""
        with self._lock:
            position = self._cursors[sink]
        entries = self.entries(sink, max_lines, max_bytes)
        return [entry.line for entry in entries], entries[-1].end if entries else position

    def entries(self, sink: str, max_lines: int = 256, max_bytes: int = DEFAULT_READ_BYTES) -> list[Entry]:
        """As :meth:`read`, each line with the position after it (to acknowledge lines one by one)."""
        with self._lock:
            position = self._cursors[sink]
            current, committed = self._current, self._end
        entries: list[Entry] = []
        budget = max_bytes
        while position.file <= current:
            limit = committed if position.file == current else self._size(position.file)
            chunk = _read_lines(
                self._path(position.file), position.offset, limit, max_lines - len(entries), budget,
                first=not entries,
            )  # fmt: skip
            for line, offset in chunk:
                entries.append(Entry(line, Position(position.file, offset)))
                budget -= len(line.encode("utf-8"))
            offset = chunk[-1][1] if chunk else position.offset
            if position.file >= current or len(entries) >= max_lines or budget <= 0:
                break
            if offset < limit:
                break  # the next line did not fit this batch
            position = Position(position.file + 1, 0)
        return entries

    def ack(self, sink: str, position: Position) -> None:
        """Record that ``sink`` has everything before ``position``; the cursor is on disk before
        it moves in memory, and a journal every sink has to its end is replaced by a fresh one."""
        with self._lock:
            try:
                write_atomic(
                    self.directory / f"cursor-{sink}.json",
                    json.dumps({"file": position.file, "offset": position.offset}).encode(),
                    fsync=self._fsync,
                )
            except OSError as exc:
                problem = f"cannot record delivery in {self.directory}: {exc.strerror}"
                raise SpoolError(exc.errno, problem) from exc
            self._cursors[sink] = position
            end = Position(self._current, self._end)
            if self._end >= self._compact_bytes and all(c == end for c in self._cursors.values()):
                with contextlib.suppress(OSError):  # compaction is retried at the next ack
                    self._start_file(self._current + 1)
                    self._cursors = dict.fromkeys(self._cursors, Position(self._current, 0))
            self._collect_garbage()

    def pending(self) -> bool:
        """Whether some sink lacks bytes of the journal (counted in bytes: a cursor at the end of
        a file and one at the start of the next, empty, file are the same place)."""
        with self._lock:
            end = Position(self._current, self._end)
            return any(self._distance(cursor, end) > 0 for cursor in self._cursors.values())

    @property
    def pending_bytes(self) -> int:
        """Bytes written but not yet acknowledged, summed over sinks (recomputed, never drifts)."""
        with self._lock:
            end = Position(self._current, self._end)
            return sum(self._distance(cursor, end) for cursor in self._cursors.values())

    def close(self, *, remove_if_empty: bool = False) -> None:
        """Release the journal; delete it only when every destination it was for has it all."""
        empty = not self.pending() and not self.foreign_sinks
        self._release_lock()
        if remove_if_empty and empty:
            shutil.rmtree(self.directory, ignore_errors=True)

    def abandon(self) -> None:
        """In a forked child: let go of the parent's journal without unlocking it (the lock
        belongs to the open file the parent still holds; unlocking here would unlock it there)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _release_lock(self) -> None:
        if self._lock_fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
        self._lock_fd = None

    def _record_sinks(self) -> tuple[str, ...]:
        """Write down which destinations this journal is for, and return those it was for before
        that this owner does not deliver to (an adopted journal keeps their evidence)."""
        path = self.directory / "sinks.json"
        try:
            earlier = set(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            earlier = set()
        foreign = tuple(sorted(earlier - set(self.sinks)))
        write_atomic(path, json.dumps(sorted(earlier | set(self.sinks))).encode(), fsync=self._fsync)
        return foreign

    def _repair(self) -> int:
        """Cut back the torn tail of every journal file (a write a crash interrupted: never
        acknowledged as persisted, so never delivered); the count is logged and returned."""
        torn = 0
        for number in self._journal_numbers():
            cut = _cut_torn_tail(self._path(number))
            if cut:
                torn += 1
                logger.warning(
                    "provtrace spool %s: cut back a torn record of %d bytes at the end of %s (a write "
                    "interrupted by a crash or a full disk; it was never reported as persisted)",
                    self.directory,
                    cut,
                    self._path(number).name,
                )
        return torn

    # --- orphans ----------------------------------------------------------------------------

    @classmethod
    def adopt_orphans(cls, root: Path, own: Path, sinks: Sequence[str]) -> Iterator[Spool]:
        """Journals in ``root`` left by processes that are gone (their lock is free)."""
        if not root.is_dir():
            return
        for directory in sorted(p for p in root.iterdir() if p.is_dir() and p != own):
            if not (directory / "lock").exists():
                continue
            try:
                yield cls(root, directory.name, sinks, directory=directory)
            except SpoolError:
                continue

    # --- internals --------------------------------------------------------------------------

    def _path(self, number: int) -> Path:
        return self.directory / f"journal-{number:08d}.jsonl"

    def _start_file(self, number: int) -> None:
        """Make ``number`` the journal written next, created now so that a reopened spool finds it."""
        os.close(os.open(self._path(number), os.O_WRONLY | os.O_CREAT, FILE_MODE))
        if self._fsync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._current, self._end = number, 0

    def _size(self, number: int) -> int:
        if number == self._current:
            return self._end
        try:
            return self._path(number).stat().st_size
        except OSError:  # gone, or the directory was replaced: nothing readable there
            return 0

    def _journal_numbers(self) -> list[int]:
        return sorted(int(m.group(1)) for p in self.directory.iterdir() if (m := _JOURNAL.match(p.name)))

    def _load_cursor(self, sink: str, files: list[int]) -> Position:
        path = self.directory / f"cursor-{sink}.json"
        first = files[0] if files else 1
        try:
            data = json.loads(path.read_text())
            position = Position(int(data["file"]), int(data["offset"]))
        except (OSError, ValueError, KeyError, TypeError):
            return Position(first, 0)
        if position.file not in files:
            return Position(first, 0) if position.file < first else Position(self._current, 0)
        position = Position(position.file, min(position.offset, self._size(position.file)))
        # A process killed between starting a fresh journal and recording its cursor there left
        # the cursor at the end of the file before: it is at the start of the next one.
        later = [number for number in files if number > position.file]
        while later and position.offset >= self._size(position.file):
            position = Position(later.pop(0), 0)
        return position

    def _distance(self, start: Position, end: Position) -> int:
        if end <= start:
            return 0
        if start.file == end.file:
            return end.offset - start.offset
        total = self._size(start.file) - start.offset
        total += sum(self._size(n) for n in range(start.file + 1, end.file))
        return total + end.offset

    def _collect_garbage(self) -> None:
        oldest = min((cursor.file for cursor in self._cursors.values()), default=self._current)
        for number in self._journal_numbers():
            if number < oldest and number < self._current:
                with contextlib.suppress(FileNotFoundError):
                    self._path(number).unlink()


def _read_lines(
    path: Path, offset: int, limit: int, max_lines: int, max_bytes: int, *, first: bool
) -> list[tuple[str, int]]:
    """Complete lines between ``offset`` and ``limit`` (the committed end) within the budget,
    each with the offset after it (the first line of a batch always fits)."""
    lines: list[tuple[str, int]] = []
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            while len(lines) < max_lines and offset < limit:
                line = handle.readline(limit - offset)
                if not line.endswith(b"\n"):
                    break
                if len(line) > max_bytes and not (first and not lines):
                    break
                max_bytes -= len(line)
                offset += len(line)
                # A journal corrupted on disk must not stop delivery: its line goes on as read,
                # and verify names the span whose digest no longer matches.
                lines.append((line.decode("utf-8", errors="replace"), offset))
    except FileNotFoundError:
        return []
    return lines

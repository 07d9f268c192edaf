"""Durable delivery: a write-ahead journal of sealed segments, with one cursor per sink.

A sealed segment is on disk (fsynced) before any sink sees it, and leaves the journal only when
every sink has acknowledged it. A process that dies leaves its journal behind; the next process
using the same spool directory adopts it and delivers what is left. Delivery is at least once:
readers drop exact duplicates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import re
import shutil
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from provtrace.private import make_dirs, opener

_JOURNAL = re.compile(r"^journal-(\d{8})\.jsonl$")
DEFAULT_FILE_BYTES = 8 * 1024 * 1024
DEFAULT_READ_BYTES = 4 * 1024 * 1024
MIN_FREE_BYTES = 1024 * 1024  # below this, the spool reports itself unable to persist


class SpoolError(OSError):
    """The spool cannot persist evidence (disk full, permissions, ...)."""


@dataclasses.dataclass(frozen=True, order=True)
class Position:
    file: int
    offset: int


def file_safe(stream_id: str) -> str:
    """A stream id as a file name (streams name spool directories and archive files)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stream_id)[:120]


def _identity(directory: Path) -> tuple[int, int]:
    """Device and inode of a directory (raises OSError if it is gone or not a directory)."""
    info = os.stat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(directory))
    return info.st_dev, info.st_ino


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb", opener=opener) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


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
        directory: Path | None = None,
    ) -> None:
        self.directory = directory or root / file_safe(stream_id)
        self.sinks = tuple(sinks)
        self._fsync = fsync
        self._max_file_bytes = max_file_bytes
        self._lock = threading.Lock()
        try:
            make_dirs(self.directory)
            self._lock_handle = open(self.directory / "lock", "a+b", opener=opener)  # noqa: SIM115 - held for life
        except OSError as exc:
            raise SpoolError(exc.errno, f"cannot create spool {self.directory}: {exc.strerror}") from exc
        try:
            fcntl.flock(self._lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_handle.close()
            raise SpoolError(exc.errno, f"spool {self.directory} is owned by another process") from exc
        self._identity = _identity(self.directory)
        self.foreign_sinks = self._record_sinks()
        files = self._journal_numbers()
        self._current = files[-1] if files else 1
        self._cursors = {sink: self._load_cursor(sink, files) for sink in self.sinks}
        self._pending_bytes = self._count_pending()

    # --- writing ----------------------------------------------------------------------------

    def append(self, lines: Sequence[str]) -> None:
        """Persist sealed segment lines; returns only once they are on disk."""
        if not lines:
            return
        data = "".join(lines).encode("utf-8")
        with self._lock:
            path = self._path(self._current)
            try:
                if path.exists() and path.stat().st_size >= self._max_file_bytes:
                    self._current += 1
                    path = self._path(self._current)
                with open(path, "ab", opener=opener) as handle:
                    size = handle.tell()
                    try:
                        handle.write(data)
                        handle.flush()
                        if self._fsync:
                            os.fsync(handle.fileno())
                    except OSError:
                        handle.truncate(size)  # no half-written line for readers to trip on
                        raise
            except OSError as exc:
                raise SpoolError(exc.errno, f"cannot write spool {path}: {exc.strerror}") from exc
            self._pending_bytes += len(data) * max(1, len(self.sinks))

    def probe(self, min_free_bytes: int = MIN_FREE_BYTES) -> str:
        """Why the spool could not take the next segment right now, or "" when it can: the
        directory must still be the one this process locked, writable, on a writable
        filesystem with room. A few system calls, cheap enough to run before every guarded
        action."""
        try:
            if _identity(self.directory) != self._identity:
                return f"spool directory {self.directory} was replaced or removed"
            if not os.access(self.directory, os.W_OK):
                return f"spool directory {self.directory} is not writable"
            fs = os.statvfs(self.directory)
        except OSError as exc:
            return f"spool directory {self.directory} is unusable: {exc.strerror}"
        if fs.f_flag & os.ST_RDONLY:
            return f"spool directory {self.directory} is on a read-only filesystem"
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
            current = self._current
        lines: list[str] = []
        budget = max_bytes
        while position.file <= current:
            chunk, offset = _read_lines(
                self._path(position.file), position.offset, max_lines - len(lines), budget, first=not lines
            )
            lines.extend(chunk)
            budget -= sum(len(line.encode("utf-8")) for line in chunk)
            position = Position(position.file, offset)
            if position.file >= current or len(lines) >= max_lines or budget <= 0:
                break
            if offset < self._size(position.file) and (chunk or lines):
                break  # the next line did not fit this batch
            # The file is done (an older file's torn last line, from a crash mid-write, is skipped).
            position = Position(position.file + 1, 0)
        return lines, position

    def ack(self, sink: str, position: Position) -> None:
        with self._lock:
            before = self._cursors[sink]
            self._cursors[sink] = position
            _write_atomic(
                self.directory / f"cursor-{sink}.json",
                json.dumps({"file": position.file, "offset": position.offset}).encode(),
            )
            self._pending_bytes = max(0, self._pending_bytes - self._distance(before, position))
            self._collect_garbage()

    def pending(self) -> bool:
        with self._lock:
            end = Position(self._current, self._size(self._current))
            return any(cursor < end for cursor in self._cursors.values())

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def close(self, *, remove_if_empty: bool = False) -> None:
        """Release the journal; delete it only when every destination it was for has it all."""
        empty = not self.pending() and not self.foreign_sinks
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
        self._lock_handle.close()
        if remove_if_empty and empty:
            shutil.rmtree(self.directory, ignore_errors=True)

    def abandon(self) -> None:
        """In a forked child: let go of the parent's journal without unlocking it (the lock
        belongs to the open file the parent still holds; unlocking here would unlock it there)."""
        self._lock_handle.close()

    def _record_sinks(self) -> tuple[str, ...]:
        """Write down which destinations this journal is for, and return those it was for before
        that this owner does not deliver to (an adopted journal keeps their evidence)."""
        path = self.directory / "sinks.json"
        try:
            earlier = set(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            earlier = set()
        foreign = tuple(sorted(earlier - set(self.sinks)))
        _write_atomic(path, json.dumps(sorted(earlier | set(self.sinks))).encode())
        return foreign

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

    def _size(self, number: int) -> int:
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
        return max(position, Position(first, 0))

    def _distance(self, start: Position, end: Position) -> int:
        if end <= start:
            return 0
        if start.file == end.file:
            return end.offset - start.offset
        total = self._size(start.file) - start.offset
        total += sum(self._size(n) for n in range(start.file + 1, end.file))
        return total + end.offset

    def _count_pending(self) -> int:
        end = Position(self._current, self._size(self._current))
        return sum(self._distance(cursor, end) for cursor in self._cursors.values())

    def _collect_garbage(self) -> None:
        oldest = min((cursor.file for cursor in self._cursors.values()), default=self._current)
        for number in self._journal_numbers():
            if number < oldest and number < self._current:
                with contextlib.suppress(FileNotFoundError):
                    self._path(number).unlink()


def _read_lines(
    path: Path, offset: int, max_lines: int, max_bytes: int, *, first: bool
) -> tuple[list[str], int]:
    """Complete lines from ``offset`` within the budget (the first line of a batch always fits);
    a partly written last line is left for later."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            lines: list[str] = []
            while len(lines) < max_lines:
                start = handle.tell()
                line = handle.readline()
                if not line.endswith(b"\n"):
                    break
                if len(line) > max_bytes and not (first and not lines):
                    handle.seek(start)
                    break
                max_bytes -= len(line)
                # A journal corrupted on disk must not stop delivery: its line goes on as read,
                # and verify names the span whose digest no longer matches.
                lines.append(line.decode("utf-8", errors="replace"))
                offset += len(line)
    except FileNotFoundError:
        return [], offset
    return lines, offset

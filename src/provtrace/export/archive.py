"""The append-only archive: OTLP/JSON lines, the format of the Collector's file exporter.

Each process appends to its own file (no interleaving between writers), rotated by size; every
``*.jsonl`` file under the directory is part of the archive and readable by the CLI.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from provtrace.export.sink import SinkError
from provtrace.private import FILE_MODE, make_dirs
from provtrace.spool import file_safe, write_whole

DEFAULT_ROTATE_BYTES = 100 * 1024 * 1024


class ArchiveSink:
    name = "archive"

    def __init__(self, directory: Path, stream_id: str, *, rotate_bytes: int = DEFAULT_ROTATE_BYTES) -> None:
        self.directory = directory
        self._stem = "provtrace-" + file_safe(stream_id)
        self._rotate_bytes = rotate_bytes
        self._part = 1
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """Parts are numbered so that sorting file names gives the order they were written in."""
        return self.directory / f"{self._stem}.{self._part:06d}.jsonl"

    def send(self, lines: Sequence[str]) -> None:
        data = "".join(lines).encode("utf-8")
        with self._lock:
            try:
                make_dirs(self.directory)
                while self.path.exists() and self.path.stat().st_size >= self._rotate_bytes:
                    self._part += 1
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
                try:
                    # Whole lines or nothing: a short write is cut back, never acknowledged.
                    write_whole(fd, data, os.fstat(fd).st_size)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise SinkError(f"cannot append to archive {self.path}: {exc.strerror}") from exc

    def close(self) -> None:
        """Nothing is held open between batches."""

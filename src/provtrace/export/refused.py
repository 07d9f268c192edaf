"""Segments a destination refused for good, moved aside so that they never block the ones behind.

A destination that answers a request with a permanent refusal (HTTP 4xx other than 408 and 429,
a rejected span, a line that is not OTLP/JSON) will refuse the same bytes again: retrying them
forever would stop every later segment. Each refused segment is written, as it was spooled, to
``<spool dir>/refused/`` (owner-only) beside a note of why, and the spool moves on; ``provtrace
doctor`` and ``health()`` show what is there until someone deals with it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from provtrace.private import make_dirs
from provtrace.spool import Position, file_safe, write_atomic

REFUSED_DIR = "refused"


@dataclasses.dataclass(frozen=True)
class Refusal:
    """What the note beside a refused segment says."""

    sink: str
    stream: str
    reason: str
    spans: int
    bytes: int
    refused_at: str
    segment: Path


class RefusedSegments:
    """The ``refused`` directory under a spool root."""

    def __init__(self, spool_root: Path, *, fsync: bool = True) -> None:
        self.directory = spool_root / REFUSED_DIR
        self._fsync = fsync

    def put(self, *, sink: str, stream: str, where: Position, line: str, reason: str, spans: int) -> Path:
        """Keep ``line`` with its reason; returns the segment's file. Raises OSError when it
        cannot be kept (then the spool must not move past it)."""
        make_dirs(self.directory)
        stem = f"{file_safe(stream)}.{where.file:08d}.{where.offset:012d}.{file_safe(sink)}"
        segment = self.directory / f"{stem}.jsonl"
        data = line.encode("utf-8")
        write_atomic(segment, data, fsync=self._fsync)
        note = {
            "sink": sink,
            "stream": stream,
            "reason": reason,
            "spans": spans,
            "bytes": len(data),
            "refused_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "segment": segment.name,
        }
        write_atomic(self.directory / f"{stem}.reason.json", json.dumps(note).encode(), fsync=self._fsync)
        return segment

    def list(self) -> list[Refusal]:
        """Every refused segment kept here, oldest name first; unreadable notes are skipped."""
        if not self.directory.is_dir():
            return []
        found: list[Refusal] = []
        for note in sorted(self.directory.glob("*.reason.json")):
            try:
                data = json.loads(note.read_text())
                found.append(
                    Refusal(
                        sink=str(data["sink"]),
                        stream=str(data["stream"]),
                        reason=str(data["reason"]),
                        spans=int(data["spans"]),
                        bytes=int(data["bytes"]),
                        refused_at=str(data["refused_at"]),
                        segment=self.directory / str(data["segment"]),
                    )
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return found

"""The local quarantine: incomplete segments held back from the collector in enforce mode.

One file per segment (the spans as OTLP/JSON plus the verdict), written atomically with owner-only
permissions. Released entries move to ``released/`` with who released them and why, so the
quarantine itself keeps an audit trail.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provtrace import jsonshape as shape
from provtrace.errors import InputError
from provtrace.integrity import span_digest
from provtrace.model import SpanRecord
from provtrace.otlpjson import decode_traces, encode_traces
from provtrace.private import make_dirs
from provtrace.rules import Violation

_ID = re.compile(r"^q-[0-9a-f]{8}-[0-9a-f]{32}-[0-9a-f]{8}$")


@dataclasses.dataclass(frozen=True)
class QuarantineEntry:
    id: str
    trace_id: str
    created_at: str
    stream: str
    seal_seq: int
    reason: str
    violations: tuple[dict[str, str], ...]
    records: tuple[SpanRecord, ...]
    digests: dict[str, str] = dataclasses.field(default_factory=dict)
    released: dict[str, str] | None = None

    def altered(self) -> list[str]:
        """Span ids whose content no longer matches the digest recorded when quarantined."""
        return [r.span_id for r in self.records if self.digests.get(r.span_id) != span_digest(r)]

    @property
    def codes(self) -> list[str]:
        return sorted({v["code"] for v in self.violations})


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Quarantine:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(
        self,
        *,
        trace_id: str,
        records: Sequence[SpanRecord],
        violations: Sequence[Violation],
        stream: str,
        seal_seq: int,
        reason: str,
    ) -> str:
        stamp = f"{int(_dt.datetime.now(_dt.timezone.utc).timestamp()):08x}"
        entry_id = f"q-{stamp}-{trace_id}-{secrets.token_hex(4)}"
        body = {
            "id": entry_id,
            "trace_id": trace_id,
            "created_at": _now(),
            "stream": stream,
            "seal_seq": seal_seq,
            "reason": reason,
            "violations": [v.detail | {"message": v.message} for v in violations],
            "spans": encode_traces(records),
            # The digests the segment's seal lists as withheld: a release checks the spans
            # against them, and verify checks both against the seal.
            "digests": {r.span_id: span_digest(r) for r in records},
        }
        make_dirs(self.directory)
        _write_private(self.directory / f"{entry_id}.json", body)
        return entry_id

    def list(self, *, include_released: bool = False) -> list[QuarantineEntry]:
        paths = sorted(self.directory.glob("q-*.json")) if self.directory.is_dir() else []
        if include_released and (self.directory / "released").is_dir():
            paths += sorted((self.directory / "released").glob("q-*.json"))
        return [self._load(path) for path in paths]

    def get(self, entry_id: str) -> QuarantineEntry:
        return self._load(self._path(entry_id))

    def mark_released(self, entry_id: str, *, by: str, reason: str) -> QuarantineEntry:
        path = self._path(entry_id)
        self._load(path)  # refuse an entry that is not well formed
        body = _read_body(path)
        body["released"] = {"by": by, "reason": reason, "at": _now()}
        target = self.directory / "released" / path.name
        make_dirs(target.parent)
        _write_private(target, body)
        path.unlink()
        return self._load(target)

    def _path(self, entry_id: str) -> Path:
        if not _ID.match(entry_id):
            raise InputError(f"{entry_id!r} is not a quarantine id (see `provtrace quarantine list`)")
        path = self.directory / f"{entry_id}.json"
        if not path.is_file():
            raise InputError(f"no quarantined segment {entry_id} in {self.directory}")
        return path

    @staticmethod
    def _load(path: Path) -> QuarantineEntry:
        """One entry, checked field by field: a quarantine file may have been edited by anyone."""
        try:
            body = shape.obj(_read_body(path), "the entry")
            released = body.get("released")
            return QuarantineEntry(
                id=shape.text(body.get("id"), "id"),
                trace_id=shape.text(body.get("trace_id"), "trace_id"),
                created_at=shape.text(body.get("created_at"), "created_at"),
                stream=shape.text(body.get("stream"), "stream"),
                seal_seq=shape.integer(body.get("seal_seq"), "seal_seq", 0, 2**63 - 1),
                reason=shape.text(body.get("reason"), "reason"),
                violations=tuple(_violation(v) for v in shape.items(body.get("violations"), "violations")),
                records=tuple(decode_traces(shape.obj(body.get("spans"), "spans"))),
                digests=_strings(body.get("digests"), "digests"),
                released=None if released is None else _strings(released, "released"),
            )
        except shape.ShapeError as exc:
            raise InputError(f"cannot read quarantine entry {path}: {exc}") from exc


def _read_body(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read quarantine entry {path}: {exc.strerror}") from exc
    return shape.parse(data, "the entry")


def _strings(value: object, what: str) -> dict[str, str]:
    """An object of texts (violation details, digests, the release note); numbers and booleans
    are read as their text."""
    out: dict[str, str] = {}
    for key, item in shape.obj(value, what).items():
        if isinstance(item, (list, dict)) or item is None:
            raise shape.ShapeError(f"the values of {what} must be strings, got {shape.kind(item)}")
        out[key] = str(item)
    return out


def _violation(value: object) -> dict[str, str]:
    """One violation's details: texts, with at least its rule code."""
    detail = _strings(value, "violation")
    if not detail.get("code"):
        raise shape.ShapeError("a violation has no code")
    return detail


def _write_private(path: Path, body: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)

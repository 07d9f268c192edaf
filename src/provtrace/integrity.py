"""Span digests, signed and chained seals, and the keys that sign them.

The span view is a fixed, source-independent projection of a span: the same digest comes out of a
span in the agent, a line of the archive, or a trace read back from Jaeger. A seal commits to the
digests of one flushed segment, to its completeness verdict and to the previous seal of the same
stream, and is signed with Ed25519, in the manner of CloudTrail's chained digest files.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
import os
import secrets
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provtrace import conventions as c
from provtrace.content import canonical_json
from provtrace.errors import KeyFileError
from provtrace.model import AttrValue, SpanRecord

# --- span view and digest --------------------------------------------------------------------


class _ViewBuilder:
    """Builds the span view, noting whether it holds floats or non-ASCII attribute keys (which
    rule out the fast canonical encoding, see ``content.canonical_json``)."""

    __slots__ = ("plain",)

    def __init__(self) -> None:
        self.plain = True

    def typed(self, value: AttrValue) -> dict[str, Any]:
        """A value tagged with its OTLP type, so that values equal in JSON but of different types
        (``1`` and ``"1"``, bytes and their base64 text, an empty value and ``""``) digest apart.
        A kvlist is a JSON object: its digest does not depend on key order."""
        if value is None:
            return {}
        if isinstance(value, str):
            return {"string": value}
        if isinstance(value, bool):
            return {"bool": value}
        if isinstance(value, int):
            return {"int": str(value)}
        if isinstance(value, float):
            if math.isfinite(value):
                self.plain = False
                return {"double": value}
            return {"double": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
        if isinstance(value, bytes):
            return {"bytes": base64.b64encode(value).decode("ascii")}
        if isinstance(value, tuple):
            return {"array": [self.typed(v) for v in value]}
        return {"kvlist": self.attributes(value)}

    def attributes(self, attributes: Mapping[str, AttrValue]) -> dict[str, Any]:
        out = {}
        for key, value in attributes.items():
            if not key.isascii():
                self.plain = False
            out[key] = self.typed(value)
        return out

    def view(self, record: SpanRecord) -> dict[str, Any]:
        """The fixed view of a span that its digest covers (DESIGN.md, Integrity): every field an
        attacker could change to mislead an investigator, events and links in recorded order."""
        return {
            "trace_id": record.trace_id,
            "span_id": record.span_id,
            "parent_span_id": record.parent_span_id,
            "parent_is_remote": record.parent_is_remote,
            "trace_state": record.trace_state,
            "name": record.name,
            "kind": record.kind,
            "start_time_unix_nano": str(record.start_ns),
            "end_time_unix_nano": str(record.end_ns),
            "status": {"code": record.status_code, "message": record.status_message},
            "attributes": self.attributes(record.attributes),
            "dropped_attributes_count": record.dropped_attributes,
            "events": [
                {
                    "name": event.name,
                    "time_unix_nano": str(event.time_ns),
                    "attributes": self.attributes(event.attributes),
                    "dropped_attributes_count": event.dropped_attributes,
                }
                for event in record.events
            ],
            "dropped_events_count": record.dropped_events,
            "links": [
                {
                    "trace_id": link.trace_id,
                    "span_id": link.span_id,
                    "trace_state": link.trace_state,
                    "attributes": self.attributes(link.attributes),
                    "dropped_attributes_count": link.dropped_attributes,
                }
                for link in record.links
            ],
            "dropped_links_count": record.dropped_links,
            "resource": self.attributes(record.resource),
            "scope": {"name": record.scope_name, "version": record.scope_version},
        }


def span_digest(record: SpanRecord) -> str:
    builder = _ViewBuilder()
    view = builder.view(record)
    return hashlib.sha256(canonical_json(view, plain=builder.plain)).hexdigest()


# --- keys ------------------------------------------------------------------------------------


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read signing key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}; provtrace signs with Ed25519 keys")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read public key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}; provtrace seals use Ed25519 keys")
    return key


def write_key_pair(private_path: Path, public_path: Path, *, overwrite: bool = False) -> str:
    """Generate an Ed25519 key pair; the private key file is created 0600 and never overwritten
    unless asked. Returns the key id."""
    for path in (private_path, public_path):
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; pass --force to replace it")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(private_path, flags, stat.S_IRUSR | stat.S_IWUSR)
    try:
        os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
        os.write(fd, private_pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    public_path.write_bytes(public_pem)
    os.chmod(public_path, 0o644)
    return key_id_of(key.public_key())


# --- seals -----------------------------------------------------------------------------------


def random_span_id() -> str:
    return secrets.token_hex(8)


def random_trace_id() -> str:
    return secrets.token_hex(16)


SIGNATURE_FIELDS: Final = (c.SEAL_DIGEST, c.SEAL_SIGNATURE)


def seal_payload(seal: SpanRecord) -> bytes:
    """The bytes a seal's digest and signature cover: the canonical span view of the seal span
    itself without those two attributes. Every field of the seal span is covered (its parent,
    times, resource, any extra attribute), not only the ``provenance.seal.*`` values."""
    unsigned = {k: v for k, v in seal.attributes.items() if k not in SIGNATURE_FIELDS}
    builder = _ViewBuilder()
    view = builder.view(dataclasses.replace(seal, attributes=unsigned))
    return canonical_json(view, plain=builder.plain)


def seal_digest(seal: SpanRecord) -> str:
    return hashlib.sha256(seal_payload(seal)).hexdigest()


@dataclasses.dataclass(frozen=True)
class SealBody:
    """The chain fields of a seal, read back from a seal span of any source."""

    stream: str
    seq: int
    prev: str
    trace_id: str
    time_unix_nano: int
    reason: str
    completeness: str
    violations: tuple[str, ...]
    spans: tuple[str, ...]
    withheld: tuple[str, ...]
    open_spans: tuple[str, ...]
    heartbeat_interval_s: float
    key_id: str

    @classmethod
    def from_record(cls, record: SpanRecord) -> SealBody:
        a = record.attributes

        def strings(key: str) -> tuple[str, ...]:
            value = a.get(key, ())
            return tuple(str(v) for v in value) if isinstance(value, tuple) else ()

        interval = a.get(c.SEAL_HEARTBEAT_INTERVAL, 0.0)
        seq = a.get(c.SEAL_SEQ, -1)
        return cls(
            stream=str(a.get(c.SEAL_STREAM, "")),
            seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else -1,
            prev=str(a.get(c.SEAL_PREV, "")),
            trace_id=record.trace_id,
            time_unix_nano=record.start_ns,
            reason=str(a.get(c.SEAL_REASON, "")),
            completeness=str(a.get(c.SEAL_COMPLETENESS, "")),
            violations=strings(c.SEAL_VIOLATIONS),
            spans=strings(c.SEAL_SPANS),
            withheld=strings(c.SEAL_WITHHELD),
            open_spans=strings(c.SEAL_OPEN_SPANS),
            heartbeat_interval_s=float(interval)
            if isinstance(interval, (int, float)) and not isinstance(interval, bool)
            else 0.0,
            key_id=str(a.get(c.SEAL_KEY_ID, "")),
        )


def covered(entries: Sequence[str]) -> dict[str, str]:
    """``span_id:digest`` entries of a seal as a mapping."""
    out: dict[str, str] = {}
    for entry in entries:
        span_id, _, digest = entry.partition(":")
        out[span_id] = digest
    return out


def verify_signature(payload: bytes, signature_b64: str, public_key: Ed25519PublicKey) -> bool:
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), payload)
    except (InvalidSignature, ValueError):
        return False
    return True


class Sealer:
    """Issues the seals of one stream: monotonic sequence, hash chain, optional signature."""

    def __init__(
        self,
        stream_id: str,
        signing_key: Ed25519PrivateKey | None,
        *,
        heartbeat_interval_s: float,
        resource: dict[str, AttrValue],
    ) -> None:
        self.stream_id = stream_id
        self._key = signing_key
        self.key_id = key_id_of(signing_key.public_key()) if signing_key else ""
        self.heartbeat_interval_s = heartbeat_interval_s
        self._resource = resource
        self._lock = threading.Lock()
        self._seq = 0
        self._prev = ""

    @property
    def next_seq(self) -> int:
        return self._seq

    def seal(
        self,
        *,
        trace_id: str,
        parent_span_id: str,
        spans: Sequence[SpanRecord],
        withheld: Sequence[SpanRecord] = (),
        completeness: str,
        violations: Sequence[str],
        reason: str,
        open_spans: Sequence[str] = (),
        now_ns: int,
    ) -> SpanRecord:
        covered_spans = tuple(f"{r.span_id}:{span_digest(r)}" for r in spans)
        held_back = tuple(f"{r.span_id}:{span_digest(r)}" for r in withheld)
        with self._lock:
            attributes: dict[str, AttrValue] = {
                c.SEAL_STREAM: self.stream_id,
                c.SEAL_SEQ: self._seq,
                c.SEAL_PREV: self._prev,
                c.SEAL_REASON: reason,
                c.SEAL_COMPLETENESS: completeness,
                c.SEAL_VIOLATIONS: tuple(violations),
                c.SEAL_SPANS: covered_spans,
                c.SEAL_WITHHELD: held_back,
                c.SEAL_OPEN_SPANS: tuple(open_spans),
                c.SEAL_HEARTBEAT_INTERVAL: float(self.heartbeat_interval_s),
                c.SEAL_KEY_ID: self.key_id,
            }
            record = SpanRecord(
                trace_id=trace_id,
                span_id=random_span_id(),
                parent_span_id=parent_span_id,
                name=c.SEAL_SPAN_NAME,
                start_ns=now_ns,
                end_ns=now_ns + 1000,  # Jaeger rewrites zero-length spans
                attributes=attributes,
                resource=self._resource,
                scope_name=c.INSTRUMENTATION_NAME,
            )
            payload = seal_payload(record)
            digest = hashlib.sha256(payload).hexdigest()
            self._seq += 1
            self._prev = digest
        signed = {**attributes, c.SEAL_DIGEST: digest, c.SEAL_SIGNATURE: self._sign(payload)}
        return dataclasses.replace(record, attributes=signed)

    def _sign(self, payload: bytes) -> str:
        if self._key is None:
            return ""
        return base64.b64encode(self._key.sign(payload)).decode("ascii")

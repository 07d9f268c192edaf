"""Signed and chained seals, the stream's Merkle log, and the key files that sign them.

A seal commits to the digests of one flushed segment (see ``provtrace.spanview``), to its
completeness verdict, to the previous seal of the same stream (in the manner of CloudTrail's
chained digest files) and to the stream's RFC 6962 tree head after it; its Ed25519 signature is
over its checkpoint (``provtrace.checkpoint``), which names the seal's digest.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import os
import secrets
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provtrace import conventions as c
from provtrace.checkpoint import checkpoint_of, signed_note
from provtrace.clock import Reading, reading
from provtrace.errors import KeyFileError, SigningError
from provtrace.merkle import MerkleLog
from provtrace.model import AttrValue, SpanRecord
from provtrace.private import make_dirs
from provtrace.signing import FileSigner, Signer, key_id_of
from provtrace.spanview import canonical_view, span_digest

__all__ = ["key_id_of", "span_digest"]  # re-exported: where callers have always found them

logger = logging.getLogger("provtrace")

# --- keys ------------------------------------------------------------------------------------


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
    make_dirs(private_path.parent)
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
# How far the wall clock may run ahead of the monotonic clock between two seals before it counts
# as stepped (verify uses the same tolerance).
CLOCK_STEP_TOLERANCE_NS: Final = 2 * 10**9


def seal_payload(seal: SpanRecord) -> bytes:
    """The bytes a seal's digest covers: the canonical span view of the seal span itself without
    its digest and signature attributes. Every field of the seal span is covered (its parent,
    times, resource, any extra attribute), not only the ``provenance.seal.*`` values."""
    unsigned = {k: v for k, v in seal.attributes.items() if k not in SIGNATURE_FIELDS}
    return canonical_view(dataclasses.replace(seal, attributes=unsigned))


def seal_digest(seal: SpanRecord) -> str:
    return hashlib.sha256(seal_payload(seal)).hexdigest()


def signed_message(seal: SpanRecord) -> bytes:
    """What a seal's signature signs: the text of its checkpoint, which names the seal's digest
    (so the signature covers the whole seal) and the stream's tree head after it."""
    checkpoint = checkpoint_of(seal)
    if checkpoint is None:
        raise ValueError("the seal carries no tree head")
    return checkpoint.text().encode()


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
    tree_size: int = -1
    tree_root: str = ""
    clock: Reading | None = None  # the monotonic reading (seals written before carry none)

    @classmethod
    def from_record(cls, record: SpanRecord) -> SealBody:
        a = record.attributes
        interval = a.get(c.SEAL_HEARTBEAT_INTERVAL, 0.0)
        return cls(
            stream=str(a.get(c.SEAL_STREAM, "")),
            seq=record.attr_int(c.SEAL_SEQ),
            prev=str(a.get(c.SEAL_PREV, "")),
            trace_id=record.trace_id,
            time_unix_nano=record.start_ns,
            reason=str(a.get(c.SEAL_REASON, "")),
            completeness=str(a.get(c.SEAL_COMPLETENESS, "")),
            violations=record.attr_strings(c.SEAL_VIOLATIONS),
            spans=record.attr_strings(c.SEAL_SPANS),
            withheld=record.attr_strings(c.SEAL_WITHHELD),
            open_spans=record.attr_strings(c.SEAL_OPEN_SPANS),
            heartbeat_interval_s=float(interval)
            if isinstance(interval, (int, float)) and not isinstance(interval, bool)
            else 0.0,
            key_id=str(a.get(c.SEAL_KEY_ID, "")),
            tree_size=record.attr_int(c.SEAL_TREE_SIZE),
            tree_root=record.attr_str(c.SEAL_TREE_ROOT) or "",
            clock=Reading.of(a, c.SEAL_CLOCK_RUN, c.SEAL_MONOTONIC),
        )

    def leaves(self) -> list[bytes]:
        """The entries this seal appends to its stream's Merkle log: the digest of every span
        it covers, forwarded then withheld, in the order it lists them."""
        return [_digest_bytes(entry) for entry in (*self.spans, *self.withheld)]


def _digest_bytes(entry: str) -> bytes:
    digest = entry.partition(":")[2]
    try:
        raw = bytes.fromhex(digest)
    except ValueError:
        raw = b""
    return raw if len(raw) == 32 else digest.encode()  # a malformed entry still counts, as itself


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
    """Issues the seals of one stream: monotonic sequence, hash chain, Merkle log, and a
    signature (when it has a signer) over each seal's checkpoint."""

    def __init__(
        self,
        stream_id: str,
        signer: Signer | Ed25519PrivateKey | None,
        *,
        heartbeat_interval_s: float,
        resource: dict[str, AttrValue],
    ) -> None:
        self.stream_id = stream_id
        self.signer = FileSigner(signer) if isinstance(signer, Ed25519PrivateKey) else signer
        self.heartbeat_interval_s = heartbeat_interval_s
        self._resource = resource
        self._lock = threading.Lock()
        self._seq = 0
        self._prev = ""
        self._log = MerkleLog()
        self._last_ns = 0
        self._last_clock: Reading | None = None
        self.signing_errors = 0
        self.clock_steps_back = 0
        self.clock_steps_forward = 0
        self.key_id = self._current_key_id()

    @property
    def next_seq(self) -> int:
        return self._seq

    @property
    def tree_size(self) -> int:
        return self._log.size

    def _current_key_id(self) -> str:
        if self.signer is None:
            return ""
        try:
            return self.signer.current_key_id()
        except SigningError as exc:
            logger.warning("provtrace could not reach its signer: %s", exc)
            return getattr(self, "key_id", "")

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
        extra: Mapping[str, AttrValue] | None = None,
    ) -> SpanRecord:
        covered_spans = tuple(f"{r.span_id}:{span_digest(r)}" for r in spans)
        held_back = tuple(f"{r.span_id}:{span_digest(r)}" for r in withheld)
        key_id = self._current_key_id()
        with self._lock:
            clock = reading()  # under the lock: readings run in the order of the sequence numbers
            self._note_clock_step(now_ns, clock)
            for entry in (*covered_spans, *held_back):
                self._log.append(_digest_bytes(entry))
            attributes: dict[str, AttrValue] = {
                **(extra or {}),
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
                c.SEAL_KEY_ID: key_id,
                c.SEAL_TREE_SIZE: self._log.size,
                c.SEAL_TREE_ROOT: self._log.root().hex(),
                c.SEAL_MONOTONIC: clock.monotonic_ns,
                c.SEAL_CLOCK_RUN: clock.run,
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
            digest = seal_digest(record)
            self._seq += 1
            self._prev = digest
        record = dataclasses.replace(record, attributes={**attributes, c.SEAL_DIGEST: digest})
        signature = self._sign(record, key_id)
        return dataclasses.replace(record, attributes={**record.attributes, c.SEAL_SIGNATURE: signature})

    def _note_clock_step(self, now_ns: int, clock: Reading) -> None:
        """Log and count a wall clock stepped since the last seal: back, or ahead of the time the
        monotonic clock measured. Seals keep the wall clock's time; verify reports the step."""
        elapsed = self._last_clock.elapsed_ns(clock) if self._last_clock is not None else None
        if now_ns < self._last_ns:
            self.clock_steps_back += 1
            logger.warning(
                "provtrace: the clock went back %.3fs since the last seal; seals keep the clock's "
                "time and verify reports it",
                (self._last_ns - now_ns) / 1e9,
            )
        elif elapsed is not None and now_ns - self._last_ns - elapsed > CLOCK_STEP_TOLERANCE_NS:
            self.clock_steps_forward += 1
            logger.warning(
                "provtrace: the clock jumped %.3fs ahead since the last seal (the monotonic clock "
                "measured %.3fs); seals keep the clock's time and verify reports it",
                (now_ns - self._last_ns) / 1e9,
                elapsed / 1e9,
            )
        self._last_ns, self._last_clock = now_ns, clock

    def _sign(self, record: SpanRecord, key_id: str) -> str:
        if self.signer is None or not key_id:
            if self.signer is not None:
                self.signing_errors += 1
            return ""
        try:
            signature = self.signer.sign(signed_message(record), key_id)
        except SigningError as exc:
            self.signing_errors += 1
            logger.warning("provtrace could not sign seal #%d: %s", record.attr_int(c.SEAL_SEQ), exc)
            return ""
        self.key_id = key_id
        return base64.b64encode(signature).decode("ascii")

    def checkpoint_note(self, seal: SpanRecord) -> str | None:
        """The signed checkpoint of a seal this sealer signed, or None when it is unsigned."""
        signature = seal.attr_str(c.SEAL_SIGNATURE) or ""
        checkpoint = checkpoint_of(seal)
        if not signature or checkpoint is None or self.signer is None:
            return None
        key = self.signer.public_key(seal.attr_str(c.SEAL_KEY_ID) or "")
        return signed_note(checkpoint.text(), checkpoint.origin, key, base64.b64decode(signature))

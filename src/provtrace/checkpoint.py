"""Checkpoints: a stream's Merkle tree head as a C2SP signed note (c2sp.org/tlog-checkpoint).

The note text is the origin (the stream, as a schema-less URL), the tree size, the base64 root,
and two extension lines that tie the tree head to the hash chain: ``seal <seq> <seal digest>``
and, for the stream's closing seal, ``end``. The seal's Ed25519 signature is the note's signature
(key name: the origin; key ID: the first four bytes of SHA-256(origin || 0x0A || 0x01 || public
key)), so every signed seal *is* a checkpoint: anyone holding the seal can write the note, and
verifying the seal's signature verifies the checkpoint and, through the chain, every earlier seal.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
import urllib.parse
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from provtrace import conventions as c
from provtrace.errors import InputError
from provtrace.model import SpanRecord

ED25519_TYPE = b"\x01"
EM_DASH = "\u2014"
_SEAL_LINE = re.compile(r"seal (0|[1-9][0-9]*) ([0-9a-f]{64})")
_SIZE = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
MAX_NOTE_BYTES = 64 * 1024
MAX_SIGNATURES = 16


def origin_of(stream: str) -> str:
    """The checkpoint origin (and signature key name) of a stream: no spaces, no plus signs."""
    return "provtrace/" + urllib.parse.quote(stream, safe="@/:._~-")


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def note_key_id(name: str, key: Ed25519PublicKey) -> bytes:
    """The signed-note key ID of an Ed25519 key under a key name."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + raw_public_key(key)).digest()[:4]


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """The tree head one seal committed to."""

    origin: str
    size: int
    root: bytes
    seq: int
    seal_digest: str
    end: bool = False

    def text(self) -> str:
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            f"seal {self.seq} {self.seal_digest}",
        ]
        if self.end:
            lines.append("end")
        return "\n".join(lines) + "\n"


def checkpoint_of(seal: SpanRecord) -> Checkpoint | None:
    """The checkpoint a seal commits to, or None for a seal without a tree head."""
    size = seal.attr_int(c.SEAL_TREE_SIZE)
    root = seal.attr_str(c.SEAL_TREE_ROOT) or ""
    digest = seal.attr_str(c.SEAL_DIGEST) or ""
    seq = seal.attr_int(c.SEAL_SEQ)
    if size < 0 or seq < 0 or not re.fullmatch(r"[0-9a-f]{64}", root):
        return None
    return Checkpoint(
        origin=origin_of(seal.attr_str(c.SEAL_STREAM) or ""),
        size=size,
        root=bytes.fromhex(root),
        seq=seq,
        seal_digest=digest,
        end=seal.attr_str(c.SEAL_REASON) == c.SEAL_REASON_CLOSE,
    )


def signed_note(text: str, name: str, key: Ed25519PublicKey, signature: bytes) -> str:
    """A signed note: the text, a blank line, one signature line."""
    line = base64.b64encode(note_key_id(name, key) + signature).decode()
    return f"{text}\n{EM_DASH} {name} {line}\n"


@dataclasses.dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


@dataclasses.dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint read from a signed note, with the note's bytes (what timestamps cover)."""

    checkpoint: Checkpoint
    text: str
    signatures: tuple[NoteSignature, ...]
    note: str

    def signed_by(self, keys: Iterable[Ed25519PublicKey]) -> Ed25519PublicKey | None:
        """The first of ``keys`` whose signature line on this note verifies (C2SP: lines of
        unknown keys are ignored; a known key's line must verify)."""
        origin = self.checkpoint.origin
        for key in keys:
            wanted = note_key_id(origin, key)
            for line in self.signatures:
                if line.name == origin and line.key_id == wanted:
                    try:
                        key.verify(line.signature, self.text.encode())
                    except InvalidSignature:
                        return None
                    return key
        return None


def parse_note(note: str) -> SignedCheckpoint:
    """Parse a checkpoint note strictly; :class:`InputError` names what is malformed."""
    if len(note.encode("utf-8", "surrogatepass")) > MAX_NOTE_BYTES:
        raise InputError("checkpoint is larger than 64 KiB")
    if _CONTROL.search(note) or not note.endswith("\n"):
        raise InputError("checkpoint is not a signed note (control characters, or no final newline)")
    text, sep, block = note.rpartition("\n\n")
    if not sep:
        raise InputError("checkpoint has no signature block")
    text += "\n"
    signatures = []
    for line in block[:-1].split("\n"):
        prefix, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if prefix != EM_DASH or not name or not encoded:
            raise InputError(f"malformed signature line in checkpoint: {line[:60]!r}")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise InputError("a checkpoint signature is not base64") from None
        if len(raw) < 5:
            raise InputError("a checkpoint signature is too short")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if len(signatures) > MAX_SIGNATURES:
        raise InputError(f"checkpoint has more than {MAX_SIGNATURES} signatures")
    return SignedCheckpoint(_parse_text(text), text, tuple(signatures), note)


def _parse_text(text: str) -> Checkpoint:
    lines = text[:-1].split("\n")
    if len(lines) not in (4, 5) or not lines[0]:
        raise InputError("checkpoint text must be origin, size, root, seal line (and end)")
    origin, size, root, seal, *rest = lines
    match = _SEAL_LINE.fullmatch(seal)
    if not _SIZE.fullmatch(size) or match is None or rest not in ([], ["end"]):
        raise InputError("checkpoint size, seal line or end marker is malformed")
    try:
        root_bytes = base64.b64decode(root, validate=True)
    except binascii.Error:
        raise InputError("checkpoint root is not base64") from None
    if len(root_bytes) != 32 or base64.b64encode(root_bytes).decode() != root:
        raise InputError("checkpoint root is not a base64 SHA-256 hash")
    return Checkpoint(origin, int(size), root_bytes, int(match[1]), match[2], end=bool(rest))

"""Proofs an auditor can check without the archive: one span's inclusion in a stream's log
(``provtrace prove`` / ``verify --proof``) and the append-only growth between two checkpoints
(``verify --consistency``).

A proof bundle is one JSON document in RFC 8785 canonical form followed by a newline: the span
view, its leaf index, the audit path, the tree size, the signed checkpoint and, when the archive
holds one, the RFC 3161 time-stamp of that checkpoint. The verifier accepts only the canonical
form, so changing any byte of a bundle makes it fail: either it no longer parses, or it is no
longer canonical, or a value changed and a hash or signature no longer matches.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import rfc8785

from provtrace import conventions as c
from provtrace.checkpoint import SignedCheckpoint, checkpoint_of, parse_note
from provtrace.errors import InputError, ProvtraceError
from provtrace.integrity import SealBody, covered
from provtrace.keyring import Keys, iso
from provtrace.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from provtrace.model import SpanRecord
from provtrace.spanview import span_digest, span_view, view_digest
from provtrace.timestamp import TimestampError, check_timestamp
from provtrace.verify import (
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    ERROR,
    EXTENDED_AFTER_END,
    FORKED_HISTORY,
    INFO,
    NOT_IN_LOG,
    PROOF_UNAVAILABLE,
    REVOKED_KEY,
    REWRITTEN_HISTORY,
    TIMESTAMPS_UNCHECKED,
    UNKNOWN_KEY,
    WARNING,
    Report,
)

FORMAT = "provtrace-inclusion-proof/v1"
FIELDS = {"format", "span", "leaf_index", "tree_size", "audit_path", "checkpoint", "timestamp"}
MAX_BUNDLE_BYTES = 16 * 1024 * 1024


class ProofError(ProvtraceError):
    """No proof can be made: the finding ``kind`` says why (exit code 1, not a usage error)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- making a proof ----------------------------------------------------------------------


def stream_leaves(
    seals: Iterable[SpanRecord], stream: str
) -> tuple[list[bytes], dict[int, tuple[int, SpanRecord]]]:
    """The stream's log entries, and for each seal seq its first leaf index and the seal."""
    chain = {SealBody.from_record(s).seq: s for s in seals if s.attr_str(c.SEAL_STREAM) == stream}
    leaves: list[bytes] = []
    starts: dict[int, tuple[int, SpanRecord]] = {}
    for expected, seq in enumerate(sorted(chain)):
        if seq != expected:
            raise ProofError(
                PROOF_UNAVAILABLE, f"seal #{expected} of {stream} is missing: its log cannot be rebuilt"
            )
        starts[seq] = (len(leaves), chain[seq])
        leaves.extend(SealBody.from_record(chain[seq]).leaves())
    return leaves, starts


def make_bundle(
    records: Sequence[SpanRecord],
    span_id: str,
    *,
    trace_id: str | None = None,
    kept: SignedCheckpoint | None = None,
) -> dict[str, Any]:
    """The inclusion proof of one span against the stream's latest checkpoint (or ``kept``)."""
    wanted = [
        r
        for r in records
        if r.span_id == span_id and not (r.is_seal or r.is_anchor) and trace_id in (None, r.trace_id)
    ]
    if not wanted:
        raise InputError(f"span {span_id} is not in the archive")
    if len({r.trace_id for r in wanted}) > 1:
        raise InputError(f"span id {span_id} occurs in several traces: give --trace TRACE_ID")
    record = wanted[0]
    digest = span_digest(record)
    seals = [r for r in records if r.is_seal]
    covering = [s for s in seals if s.trace_id == record.trace_id and _covers(s, span_id, digest)]
    if not covering:
        claimed = any(
            span_id in covered(s.attr_strings(c.SEAL_SPANS)) for s in seals if s.trace_id == record.trace_id
        )
        raise ProofError(
            NOT_IN_LOG,
            f"span {span_id} differs from what was sealed"
            if claimed
            else f"span {span_id} is not in any stream's log",
        )
    seal = covering[0]
    stream = seal.attr_str(c.SEAL_STREAM) or ""
    leaves, starts = stream_leaves(seals, stream)
    start, _ = starts[seal.attr_int(c.SEAL_SEQ)]
    entries = SealBody.from_record(seal).leaves()
    index = start + entries.index(bytes.fromhex(digest))
    tree = MerkleTree(leaves)
    note = _latest_note(records, stream) if kept is None else kept
    size = note.checkpoint.size
    if size > tree.size or tree.root(size) != note.checkpoint.root:
        raise ProofError(
            REWRITTEN_HISTORY, f"the archive's log of {stream} does not match the checkpoint at size {size}"
        )
    if index >= size:
        raise ProofError(
            PROOF_UNAVAILABLE, f"the checkpoint (size {size}) predates span {span_id} (entry {index})"
        )
    bundle: dict[str, Any] = {
        "format": FORMAT,
        "span": span_view(record),
        "leaf_index": index,
        "tree_size": size,
        "audit_path": [base64.b64encode(node).decode() for node in tree.inclusion_proof(index, size)],
        "checkpoint": note.note,
    }
    token = timestamp_for(records, note.note)
    if token is not None:
        bundle["timestamp"] = base64.b64encode(token).decode()
    return bundle


def _covers(seal: SpanRecord, span_id: str, digest: str) -> bool:
    entries = (*seal.attr_strings(c.SEAL_SPANS), *seal.attr_strings(c.SEAL_WITHHELD))
    return f"{span_id}:{digest}" in entries


def _latest_note(records: Sequence[SpanRecord], stream: str) -> SignedCheckpoint:
    """The checkpoint of the stream's newest seal that has one (exported as a checkpoint span)."""
    seals = {r.span_id: r for r in records if r.is_seal and r.attr_str(c.SEAL_STREAM) == stream}
    best: tuple[int, SignedCheckpoint] | None = None
    for record in records:
        if record.name != c.CHECKPOINT_SPAN_NAME or record.parent_span_id not in seals:
            continue
        parsed = parse_note(record.attr_str(c.CHECKPOINT_NOTE) or "")
        expected = checkpoint_of(seals[record.parent_span_id])
        if (
            expected is not None
            and expected.text() == parsed.text
            and (best is None or parsed.checkpoint.seq > best[0])
        ):
            best = (parsed.checkpoint.seq, parsed)
    if best is None:
        raise ProofError(PROOF_UNAVAILABLE, f"the archive holds no signed checkpoint of {stream}")
    return best[1]


def timestamp_for(records: Iterable[SpanRecord], note: str) -> bytes | None:
    from rfc3161_client import decode_timestamp_response

    imprint = hashlib.sha256(note.encode()).digest()
    for record in records:
        if record.name == c.TIMESTAMP_SPAN_NAME:
            try:
                token = base64.b64decode(record.attr_str(c.TIMESTAMP_TOKEN) or "", validate=True)
                if decode_timestamp_response(token).tst_info.message_imprint.message == imprint:
                    return token
            except (ValueError, binascii.Error):
                continue
    return None


def dump_bundle(bundle: dict[str, Any]) -> bytes:
    return bytes(rfc8785.dumps(bundle)) + b"\n"


# --- checking a proof --------------------------------------------------------------------


def read_bundle(data: bytes) -> dict[str, Any]:
    """A bundle, strictly: canonical bytes, known fields of the right types; else InputError."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise InputError("the proof bundle is larger than 16 MiB")
    try:
        bundle = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InputError("the proof bundle is not JSON") from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise InputError(f"not a provtrace proof bundle (format {FORMAT})")
    try:
        canonical = dump_bundle(bundle)
    except (rfc8785.CanonicalizationError, TypeError):
        canonical = b""
    if canonical != data:
        raise InputError("the proof bundle is not in its canonical form: it was edited")
    types = {"span": dict, "leaf_index": int, "tree_size": int, "audit_path": list, "checkpoint": str}
    if not set(types) <= set(bundle) <= FIELDS or any(
        not isinstance(bundle[k], t) or isinstance(bundle[k], bool) for k, t in types.items()
    ):
        raise InputError("the proof bundle lacks a field or has one of the wrong type")
    if not all(isinstance(node, str) for node in bundle["audit_path"]) or not isinstance(
        bundle.get("timestamp", ""), str
    ):
        raise InputError("the proof bundle's audit path or time-stamp is malformed")
    return bundle


def verify_bundle(bundle: dict[str, Any], keys: Keys) -> tuple[Report, dict[str, Any]]:
    report = Report()
    note = parse_note(bundle["checkpoint"])
    cp = note.checkpoint
    view = bundle["span"]
    facts = {
        "trace_id": view.get("trace_id"),
        "span_id": view.get("span_id"),
        "name": view.get("name"),
        "origin": cp.origin,
        "leaf_index": bundle["leaf_index"],
        "tree_size": cp.size,
    }
    try:
        path = [base64.b64decode(node, validate=True) for node in bundle["audit_path"]]
        leaf = leaf_hash(bytes.fromhex(view_digest(view)))
    except (binascii.Error, ValueError, TypeError, rfc8785.CanonicalizationError):
        raise InputError("the proof bundle's span view or audit path cannot be decoded") from None
    if bundle["tree_size"] != cp.size or not verify_inclusion(
        leaf, bundle["leaf_index"], cp.size, path, cp.root
    ):
        report.add(
            NOT_IN_LOG,
            ERROR,
            f"span {facts['span_id']} is not entry {bundle['leaf_index']} of the checkpointed log",
        )
    _check_note(note, keys, report, token=_decoded(bundle.get("timestamp")))
    return report, facts


def _decoded(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise InputError("the proof bundle's time-stamp is not base64") from None


def _check_note(note: SignedCheckpoint, keys: Keys, report: Report, *, token: bytes | None) -> None:
    """The checkpoint's signature by a trusted key, its time-stamp, and its key's standing."""
    cp = note.checkpoint
    report.seals_checked += 1
    signer = note.signed_by(keys.by_id.values()) if keys.given else None
    if keys.given and signer is None:  # (without keys, Report.finish says nothing was checked)
        known = any(line.name == cp.origin for line in note.signatures)
        report.add(
            BAD_SIGNATURE if known else UNKNOWN_KEY,
            ERROR,
            f"checkpoint of {cp.origin} at size {cp.size} is not signed by a trusted key",
        )
    stamp_ns = None
    if token is not None:
        report.timestamps_checked += 1
        if not keys.tsa_roots:
            report.add(TIMESTAMPS_UNCHECKED, WARNING, "the time-stamp was not checked: give --tsa-cert FILE")
        else:
            try:
                stamp = check_timestamp(token, note.note.encode(), keys.tsa_roots)
                stamp_ns = stamp.gen_time_ns
                report.add("timestamped", INFO, f"checkpoint existed at {iso(stamp_ns)} (TSA {stamp.tsa})")
            except TimestampError as exc:
                report.add(BAD_TIMESTAMP, ERROR, f"checkpoint time-stamp: {exc}")
    entry = next((e for e in keys.entries.values() if signer is not None and e.public_key == signer), None)
    if (
        entry is not None
        and entry.revoked_at_ns is not None
        and not (stamp_ns is not None and stamp_ns < entry.revoked_at_ns)
    ):
        report.add(
            REVOKED_KEY,
            ERROR,
            f"the checkpoint is signed by key {entry.key_id}, revoked at {iso(entry.revoked_at_ns)}, and no "
            "trusted time-stamp proves it was signed before",
        )


def check_consistency(
    old: SignedCheckpoint,
    new: SignedCheckpoint,
    leaves_of: Callable[[str], list[bytes] | None],
    keys: Keys,
    *,
    tokens: tuple[bytes | None, bytes | None] = (None, None),
) -> tuple[Report, list[bytes]]:
    """Whether ``new`` extends ``old`` (same origin): equal sizes need equal roots; otherwise a
    consistency proof is computed from the archive's log (``leaves_of(origin)``) and verified
    against the two roots, as an auditor without the archive would."""
    report = Report()
    _check_note(old, keys, report, token=tokens[0])
    _check_note(new, keys, report, token=tokens[1])
    if old.checkpoint.size > new.checkpoint.size:
        old, new = new, old
    a, b = old.checkpoint, new.checkpoint
    if a.origin != b.origin:
        raise InputError(f"the checkpoints are of different streams ({a.origin}, {b.origin})")
    if a.size == b.size:
        if a.root != b.root:
            report.add(
                FORKED_HISTORY,
                ERROR,
                f"two checkpoints of size {a.size} with different roots: a forked history",
            )
        return report, []
    if a.end:
        report.add(
            EXTENDED_AFTER_END,
            ERROR,
            f"the checkpoint at size {a.size} ended the stream, yet one at {b.size} exists",
        )
    leaves = leaves_of(a.origin)
    if leaves is None or len(leaves) < b.size:
        report.add(
            PROOF_UNAVAILABLE, ERROR, f"the archive does not hold the {b.size} entries of {a.origin} needed"
        )
        return report, []
    tree = MerkleTree(leaves)
    proof = tree.consistency_proof(a.size, b.size)
    if not verify_consistency(a.size, b.size, a.root, b.root, proof):
        which = "older" if tree.root(a.size) != a.root else "newer"
        report.add(
            REWRITTEN_HISTORY,
            ERROR,
            f"the log of size {b.size} does not extend the one of size {a.size} (the archive differs "
            f"from the {which} checkpoint): history was rewritten",
        )
    return report, proof


def seal_streams(records: Iterable[SpanRecord]) -> dict[str, list[SpanRecord]]:
    streams: dict[str, list[SpanRecord]] = collections.defaultdict(list)
    for record in records:
        if record.is_seal:
            streams[record.attr_str(c.SEAL_STREAM) or ""].append(record)
    return streams

"""Checks beyond the chain: each stream's Merkle log, its checkpoints and time-stamps, the
agent's and the TSA's clocks, key periods and revocations, and checkpoints an auditor kept.

The log is rebuilt from the seals (their ``span_id:digest`` lists, in sequence order) and every
seal's tree head must match it. A checkpoint span must be exactly the checkpoint of its seal
(cheap: a comparison, since the seal's signature is the checkpoint's). A time-stamp token must
verify against a trusted TSA root and cover a checkpoint of the evidence. A kept checkpoint must
be signed by a trusted key and be a prefix of the archive's log, or the history was rewritten.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
from collections.abc import Mapping, Sequence

from provtrace import conventions as c
from provtrace.checkpoint import SignedCheckpoint, checkpoint_of, origin_of, parse_note, signed_note
from provtrace.errors import InputError
from provtrace.integrity import SealBody
from provtrace.keyring import Keys
from provtrace.merkle import MerkleLog, MerkleTree
from provtrace.model import SpanRecord
from provtrace.timestamp import Stamp, TimestampError, check_timestamp
from provtrace.verify import (
    ALTERED_CHECKPOINT,
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    ERROR,
    EXTENDED_AFTER_END,
    NO_MERKLE_LOG,
    PROOF_UNAVAILABLE,
    REWRITTEN_HISTORY,
    TIMESTAMPS_UNCHECKED,
    TREE_MISMATCH,
    WARNING,
    Report,
)
from provtrace.verify_time import Chain, check_clocks, check_key_periods


def check_stream_log(
    chains: Mapping[str, Chain],
    anchors: Sequence[SpanRecord],
    keys: Keys,
    report: Report,
    *,
    kept: Sequence[object],
    now_ns: int | None = None,
) -> None:
    logs = {stream: _check_log(stream, chain, report) for stream, chain in chains.items()}
    seals = [seal for chain in chains.values() for _, seal in chain.values()]
    stamps = _check_anchors(seals, anchors, keys, report)
    for stream, chain in chains.items():
        check_clocks(stream, chain, stamps, report, now_ns=now_ns)
        check_key_periods(stream, chain, stamps, keys, report, whole_stream=True)
    by_origin = {origin_of(stream): (stream, logs[stream], chains[stream]) for stream in chains}
    for checkpoint in kept:
        assert isinstance(checkpoint, SignedCheckpoint)
        _check_kept(checkpoint, by_origin, keys, report)


def check_trace_anchors(
    seals: Sequence[SpanRecord], anchors: Sequence[SpanRecord], keys: Keys, report: Report
) -> None:
    """One trace: its seals' checkpoint spans and time-stamps, and the keys that signed them."""
    stamps = _check_anchors(seals, anchors, keys, report)
    by_stream: dict[str, dict[int, tuple[SealBody, SpanRecord]]] = collections.defaultdict(dict)
    for seal in seals:
        body = SealBody.from_record(seal)
        by_stream[body.stream][body.seq] = (body, seal)
    for stream, chain in by_stream.items():
        check_key_periods(stream, chain, stamps, keys, report, whole_stream=False)


def _check_log(stream: str, chain: Chain, report: Report) -> list[bytes] | None:
    """Rebuild the stream's log; every seal's tree head must match. Returns the leaves, or None
    when seals are missing (then the log cannot be rebuilt past the gap)."""
    log, leaves = MerkleLog(), []
    heads = [chain[seq][0].tree_size >= 0 for seq in sorted(chain)]
    if heads and not any(heads):
        report.add(NO_MERKLE_LOG, WARNING, "this stream's seals carry no Merkle tree head", stream=stream)
        return None
    for expected, seq in enumerate(sorted(chain)):
        if seq != expected:
            return None
        body = chain[seq][0]
        for leaf in body.leaves():
            log.append(leaf)
            leaves.append(leaf)
        if (body.tree_size, body.tree_root) != (log.size, log.root().hex()):
            report.add(
                TREE_MISMATCH,
                ERROR,
                f"seal #{seq} claims a log of {body.tree_size} entries with root {body.tree_root[:12]}…, "
                f"but its stream's seals make {log.size} with root {log.root().hex()[:12]}…",
                stream=stream,
                seq=seq,
            )
    return leaves


def _note_of(seal: SpanRecord, keys: Keys) -> str | None:
    """The signed checkpoint note of a seal, when its key is trusted (the note names the key)."""
    checkpoint = checkpoint_of(seal)
    key = keys.by_id.get(seal.attr_str(c.SEAL_KEY_ID) or "")
    signature = seal.attr_str(c.SEAL_SIGNATURE) or ""
    if checkpoint is None or key is None or not signature:
        return None
    try:
        raw = base64.b64decode(signature, validate=True)
    except binascii.Error:
        return None
    return signed_note(checkpoint.text(), checkpoint.origin, key, raw)


def _check_anchors(
    seals: Sequence[SpanRecord], anchors: Sequence[SpanRecord], keys: Keys, report: Report
) -> dict[tuple[str, int], Stamp]:
    """Checkpoint spans against their seals; time-stamps against the TSA roots. Returns the
    verified time-stamps by (stream origin, seq)."""
    by_place = {(origin_of(s.attr_str(c.SEAL_STREAM) or ""), s.attr_int(c.SEAL_SEQ)): s for s in seals}
    stamps: dict[tuple[str, int], Stamp] = {}
    tokens: list[tuple[SpanRecord, bytes]] = []
    for anchor in anchors:
        where = {"trace_id": anchor.trace_id, "span_id": anchor.span_id}
        if anchor.name == c.CHECKPOINT_SPAN_NAME:
            report.checkpoints_checked += 1
            problem = _checkpoint_problem(anchor, by_place, keys)
            if problem:
                report.add(ALTERED_CHECKPOINT, ERROR, f"checkpoint span {anchor.span_id}: {problem}", **where)
            continue
        token = _token(anchor)
        if token is None:
            report.add(BAD_TIMESTAMP, ERROR, f"time-stamp span {anchor.span_id} holds no token", **where)
        else:
            tokens.append((anchor, token))
    if tokens and not keys.tsa_roots:
        report.add(
            TIMESTAMPS_UNCHECKED,
            WARNING,
            f"{len(tokens)} time-stamp(s) were not checked: no trusted TSA certificate was given "
            "(--tsa-cert FILE); no trusted time is claimed",
        )
        return stamps
    notes: dict[bytes, tuple[tuple[str, int], str]] = {}  # what each token may cover, by imprint
    for place, seal in by_place.items():
        note = _note_of(seal, keys)
        if note is not None:
            notes[hashlib.sha256(note.encode()).digest()] = (place, note)
    for anchor, token in tokens:
        report.timestamps_checked += 1
        where = {"trace_id": anchor.trace_id, "span_id": anchor.span_id}
        imprint = _imprint(token)
        match = notes.get(imprint) if imprint is not None else None
        if match is None:
            report.add(BAD_TIMESTAMP, ERROR, "a time-stamp covers no checkpoint of this evidence", **where)
            continue
        place, note = match
        try:
            stamp = check_timestamp(token, note.encode(), keys.tsa_roots)
        except TimestampError as exc:
            report.add(BAD_TIMESTAMP, ERROR, f"time-stamp of checkpoint #{place[1]}: {exc}", **where)
            continue
        earlier = stamps.get(place)
        if earlier is None or stamp.gen_time_ns < earlier.gen_time_ns:
            stamps[place] = stamp
    return stamps


def _checkpoint_problem(
    anchor: SpanRecord, by_place: Mapping[tuple[str, int], SpanRecord], keys: Keys
) -> str:
    if set(anchor.attributes) != {c.CHECKPOINT_NOTE}:
        return "it carries attributes other than the note"
    try:
        parsed = parse_note(anchor.attr_str(c.CHECKPOINT_NOTE) or "")
    except InputError as exc:
        return str(exc)
    seal = by_place.get((parsed.checkpoint.origin, parsed.checkpoint.seq))
    if seal is None:
        if keys.given and parsed.signed_by(keys.by_id.values()) is None:
            return "it is not signed by a trusted key, and its seal is not in the evidence"
        return ""
    expected = checkpoint_of(seal)
    if expected is None or expected.text() != parsed.text:
        return f"it differs from the checkpoint of seal #{parsed.checkpoint.seq}"
    signature = seal.attr_str(c.SEAL_SIGNATURE) or ""
    if not any(base64.b64encode(line.signature).decode() == signature for line in parsed.signatures):
        return f"its signature is not the signature of seal #{parsed.checkpoint.seq}"
    if keys.given and _note_of(seal, keys) not in (None, parsed.note):
        return "its signature line does not name the seal's key"
    return ""


def _token(anchor: SpanRecord) -> bytes | None:
    if set(anchor.attributes) != {c.TIMESTAMP_TOKEN}:
        return None
    try:
        return base64.b64decode(anchor.attr_str(c.TIMESTAMP_TOKEN) or "", validate=True) or None
    except binascii.Error:
        return None


def _imprint(token: bytes) -> bytes | None:
    from rfc3161_client import decode_timestamp_response

    try:
        return decode_timestamp_response(token).tst_info.message_imprint.message
    except ValueError:
        return None


def _check_kept(
    kept: SignedCheckpoint,
    by_origin: Mapping[str, tuple[str, list[bytes] | None, Chain]],
    keys: Keys,
    report: Report,
) -> None:
    cp = kept.checkpoint
    if kept.signed_by(keys.by_id.values()) is None:
        report.add(
            BAD_SIGNATURE,
            ERROR,
            f"the kept checkpoint of {cp.origin} at size {cp.size} is not signed by a trusted key",
        )
        return
    found = by_origin.get(cp.origin)
    if found is None or found[1] is None:
        report.add(
            PROOF_UNAVAILABLE,
            ERROR,
            f"the archive holds no complete log of {cp.origin} to check a kept checkpoint against",
        )
        return
    stream, leaves, chain = found
    assert leaves is not None
    where = {"stream": stream, "seq": cp.seq}
    if cp.size > len(leaves):
        report.add(
            REWRITTEN_HISTORY,
            ERROR,
            f"a kept checkpoint saw {cp.size} entries; the archive's log has only {len(leaves)}: "
            "history was cut",
            **where,
        )
        return
    if MerkleTree(leaves).root(cp.size) != cp.root:
        report.add(
            REWRITTEN_HISTORY,
            ERROR,
            f"the archive's first {cp.size} entries differ from what the kept checkpoint (seal #{cp.seq}) "
            "committed to: the history was rewritten (and re-signed)",
            **where,
        )
    elif cp.end and (len(leaves) > cp.size or max(chain) > cp.seq):
        report.add(
            EXTENDED_AFTER_END,
            ERROR,
            f"the kept checkpoint (seal #{cp.seq}) ended the stream, but the archive goes on after it",
            **where,
        )

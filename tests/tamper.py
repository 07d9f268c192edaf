"""Attacks on an archive of OTLP JSON lines, each on a modified copy, and the finding each must
produce. Shared by the tamper tests on the embedded archive and on the collector's archive."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provtrace import conventions as c
from provtrace.checkpoint import checkpoint_of, signed_note
from provtrace.cli.main import main as cli
from provtrace.integrity import (
    SealBody,
    key_id_of,
    load_private_key,
    seal_digest,
    signed_message,
    span_digest,
)
from provtrace.merkle import MerkleLog
from provtrace.model import SpanRecord
from provtrace.otlpjson import decode_traces, dumps_line
from provtrace.proofs import dump_bundle, make_bundle

Line = dict[str, Any]


class Archive:
    """A copy of an archive directory, edited span by span and written back."""

    def __init__(self, source: Path, target: Path, *, key: Ed25519PrivateKey | None = None) -> None:
        shutil.copytree(source, target)
        self.root = target
        self.key = key  # the emitter's own signing key, for attacks by whoever holds it
        self.files = sorted(target.rglob("*.jsonl"))
        self.lines: dict[Path, list[Line]] = {
            path: [json.loads(text) for text in path.read_text(encoding="utf-8").split("\n") if text.strip()]
            for path in self.files
        }

    def spans(self) -> Iterator[tuple[Path, int, list[Line], int, Line]]:
        """(file, line index, span list, position, span) for every span, in file order."""
        for path, lines in self.lines.items():
            for index, line in enumerate(lines):
                for resource in line["resourceSpans"]:
                    for scope in resource["scopeSpans"]:
                        for position, span in enumerate(scope["spans"]):
                            yield path, index, scope["spans"], position, span

    def records(self) -> list[SpanRecord]:
        return [r for lines in self.lines.values() for line in lines for r in decode_traces(line)]

    def seals(self) -> list[Line]:
        return [s for *_, s in self.spans() if s["name"] == c.SEAL_SPAN_NAME]

    def step(self, step: str) -> Line:
        return next(s for *_, s in self.spans() if attribute(s, c.STEP) == step)

    def record(self, span_id: str) -> SpanRecord:
        """The span as a reader would decode it now (with its resource)."""
        for lines in self.lines.values():
            for line in lines:
                for record in decode_traces(line):
                    if record.span_id == span_id:
                        return record
        raise AssertionError(f"no span {span_id}")

    def save(self) -> None:
        for path, lines in self.lines.items():
            path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))


def attribute(span: Line, key: str) -> Any:
    for item in span.get("attributes", []):
        if item["key"] == key:
            return next(iter(item["value"].values()))
    return None


def set_attribute(span: Line, key: str, value: dict[str, Any]) -> None:
    for item in span["attributes"]:
        if item["key"] == key:
            item["value"] = value
            return
    span["attributes"].append({"key": key, "value": value})


@dataclass(frozen=True)
class Attack:
    name: str
    run: Callable[[Archive], str]  # edits the copy; returns the span id the finding must name ("" if none)
    finding: str
    # How the auditor checks: "stream" (verify --stream), "kept" (verify --stream with a checkpoint
    # kept before the attack), "consistency" (verify --consistency KEPT FORGED), "proof" (verify
    # --proof of the bundle the attack wrote).
    check: str = "stream"


def change_attribute(archive: Archive) -> str:
    action = archive.step(c.STEP_ACTION)
    set_attribute(action, c.ACTION_TARGET, {"stringValue": "sg-999/rule-0"})
    return str(action["spanId"])


def change_timestamp(archive: Archive) -> str:
    approval = archive.step(c.STEP_APPROVAL)
    approval["startTimeUnixNano"] = str(int(approval["startTimeUnixNano"]) - 3_600_000_000_000)
    return str(approval["spanId"])


def delete_span(archive: Archive) -> str:
    for _, _, spans, position, span in archive.spans():
        if attribute(span, c.STEP) == c.STEP_POLICY_CHECK:
            del spans[position]
            return str(span["spanId"])
    raise AssertionError("no policy check to delete")


def add_span(archive: Archive) -> str:
    for _, _, spans, _, span in archive.spans():
        if attribute(span, c.STEP) == c.STEP_APPROVAL:
            forged = json.loads(json.dumps(span))
            forged["spanId"] = "f0f0f0f0f0f0f0f0"
            set_attribute(forged, c.APPROVAL_APPROVER_ID, {"stringValue": "mallory@example.com"})
            spans.append(forged)
            return "f0f0f0f0f0f0f0f0"
    raise AssertionError("no approval to copy")


def reorder_lines(archive: Archive) -> str:
    for lines in archive.lines.values():
        if len(lines) >= 2:
            lines[0], lines[-1] = lines[-1], lines[0]
            return ""
    raise AssertionError("the archive needs two lines to reorder")


def delete_trace_from_the_middle(archive: Archive) -> str:
    seals = sorted(archive.seals(), key=lambda s: int(attribute(s, c.SEAL_SEQ)))
    victim = next(s for s in seals[1:-1] if attribute(s, c.SEAL_SPANS))["traceId"]
    for lines in archive.lines.values():
        for line in lines:
            for resource in line["resourceSpans"]:
                for scope in resource["scopeSpans"]:
                    scope["spans"] = [s for s in scope["spans"] if s["traceId"] != victim]
    return ""


def cut_the_tail(archive: Archive) -> str:
    seals = sorted(archive.seals(), key=lambda s: int(attribute(s, c.SEAL_SEQ)))
    doomed = {s["traceId"] for s in seals[-2:]}  # the last decision and the closing seal
    for lines in archive.lines.values():
        for line in lines:
            for resource in line["resourceSpans"]:
                for scope in resource["scopeSpans"]:
                    scope["spans"] = [s for s in scope["spans"] if s["traceId"] not in doomed]
    return ""


def _recover_seal(archive: Archive, seal: Line, action_id: str) -> None:
    """Make the seal's list of span digests cover the action as it is now."""
    digest = span_digest(archive.record(action_id))
    spans = [
        f"{action_id}:{digest}" if entry.startswith(action_id) else entry
        for entry in (item["stringValue"] for item in attribute_value(seal, c.SEAL_SPANS))
    ]
    set_attribute(seal, c.SEAL_SPANS, {"arrayValue": {"values": [{"stringValue": e} for e in spans]}})


def _resign(archive: Archive, seal: Line, key: Ed25519PrivateKey | None) -> str:
    """Recompute the seal's digest (and signature, if a key is given) over its current content,
    and rewrite its checkpoint span to match (keeping the old signature when there is no key)."""
    if key is not None:
        set_attribute(seal, c.SEAL_KEY_ID, {"stringValue": key_id_of(key.public_key())})
    digest = seal_digest(archive.record(seal["spanId"]))
    set_attribute(seal, c.SEAL_DIGEST, {"stringValue": digest})
    if key is not None:
        signature = base64.b64encode(key.sign(signed_message(archive.record(seal["spanId"])))).decode()
        set_attribute(seal, c.SEAL_SIGNATURE, {"stringValue": signature})
    text = checkpoint_of(archive.record(seal["spanId"]))
    for *_, span in archive.spans():
        if span["name"] == c.CHECKPOINT_SPAN_NAME and span.get("parentSpanId") == seal["spanId"] and text:
            old = attribute(span, c.CHECKPOINT_NOTE)
            if key is not None:
                raw = base64.b64decode(attribute(seal, c.SEAL_SIGNATURE))
                note = signed_note(text.text(), text.origin, key.public_key(), raw)
            else:
                note = text.text() + old[old.rindex("\n\n") + 1 :]
            set_attribute(span, c.CHECKPOINT_NOTE, {"stringValue": note})
    return digest


def sorted_seals(archive: Archive) -> list[Line]:
    return sorted(archive.seals(), key=lambda s: int(attribute(s, c.SEAL_SEQ)))


def _reseal_from(archive: Archive, first: int, key: Ed25519PrivateKey | None) -> None:
    """Recompute tree heads, chain links, digests (and signatures) from the ``first`` seal on."""
    seals = sorted_seals(archive)
    log = MerkleLog()
    prev = ""
    for index, seal in enumerate(seals):
        for leaf in SealBody.from_record(archive.record(seal["spanId"])).leaves():
            log.append(leaf)
        if index < first:
            prev = str(attribute(seal, c.SEAL_DIGEST))
            continue
        set_attribute(seal, c.SEAL_PREV, {"stringValue": prev})
        set_attribute(seal, c.SEAL_TREE_SIZE, {"intValue": str(log.size)})
        set_attribute(seal, c.SEAL_TREE_ROOT, {"stringValue": log.root().hex()})
        prev = _resign(archive, seal, key)


def reseal_with_another_key(archive: Archive) -> str:
    """Forge the seal of the action's trace (covering a changed action) with the attacker's key."""
    action = archive.step(c.STEP_ACTION)
    set_attribute(action, c.ACTION_TARGET, {"stringValue": "sg-999/rule-0"})
    seal = next(s for s in archive.seals() if s["traceId"] == action["traceId"])
    _recover_seal(archive, seal, action["spanId"])
    _resign(archive, seal, Ed25519PrivateKey.generate())
    return str(seal["spanId"])


def rehash_after_edit(archive: Archive) -> str:
    """Edit the action, then recompute every digest, tree head and the whole chain after it,
    without any key (the old signatures stay and no longer verify): what digests alone cannot
    catch."""
    return _rewrite(archive, None)


def _rewrite(archive: Archive, key: Ed25519PrivateKey | None) -> str:
    action = archive.step(c.STEP_ACTION)
    set_attribute(action, c.ACTION_TARGET, {"stringValue": "sg-999/rule-0"})
    seals = sorted_seals(archive)
    first = next(i for i, s in enumerate(seals) if s["traceId"] == action["traceId"])
    _recover_seal(archive, seals[first], action["spanId"])
    _reseal_from(archive, first, key)
    return str(seals[first]["spanId"])


def checkpoint_notes(archive: Archive) -> dict[int, str]:
    """The signed checkpoints of the archive's checkpoint spans, by seal seq."""
    notes = {}
    for *_, span in archive.spans():
        if span["name"] == c.CHECKPOINT_SPAN_NAME:
            note = str(attribute(span, c.CHECKPOINT_NOTE))
            notes[int(note.split("\n")[3].split()[1])] = note
    return notes


def rewrite_history_with_the_key(archive: Archive) -> str:
    """What an operator holding the signing key can do: edit the action and re-sign everything
    after it, checkpoints included. The archive is consistent in itself (verify --stream alone
    passes); only a checkpoint that left the host earlier shows the rewrite."""
    assert archive.key is not None
    _rewrite(archive, archive.key)
    return ""


def prove_a_forged_span(archive: Archive) -> str:
    """Take a genuine inclusion proof of the action and swap in an edited action: the span is
    not in the log, whatever the bundle claims."""
    action = archive.step(c.STEP_ACTION)
    bundle = make_bundle(archive.records(), str(action["spanId"]))
    bundle["span"]["attributes"][c.ACTION_TARGET] = {"string": "sg-999/rule-0"}
    (archive.root / "forged.proof").write_bytes(dump_bundle(bundle))
    return ""


def _field_edit(edit: Callable[[Line], None], step: str = c.STEP_ACTION) -> Callable[[Archive], str]:
    def run(archive: Archive) -> str:
        span = archive.step(step)
        edit(span)
        return str(span["spanId"])

    return run


def _resource_edit(archive: Archive) -> str:
    """Claim the action ran on another host: every span of its line shares the resource."""
    action = archive.step(c.STEP_ACTION)
    for lines in archive.lines.values():
        for line in lines:
            for resource in line["resourceSpans"]:
                for scope in resource["scopeSpans"]:
                    if any(span["spanId"] == action["spanId"] for span in scope["spans"]):
                        resource["resource"]["attributes"].append(
                            {"key": "host.name", "value": {"stringValue": "innocent-host"}}
                        )
                        return str(action["spanId"])
    raise AssertionError("no resource holds the action")


def _scope_edit(archive: Archive) -> str:
    action = archive.step(c.STEP_ACTION)
    for lines in archive.lines.values():
        for line in lines:
            for resource in line["resourceSpans"]:
                for scope in resource["scopeSpans"]:
                    if any(span["spanId"] == action["spanId"] for span in scope["spans"]):
                        scope["scope"]["version"] = "0.0.0-forged"
                        return str(action["spanId"])
    raise AssertionError("no scope holds the action")


def _reorder_events(span: Line) -> None:
    span["events"] = [
        {"timeUnixNano": span["startTimeUnixNano"], "name": "forged-first"},
        *span.get("events", []),
    ]


def _seal_edit(edit: Callable[[Line], None]) -> Callable[[Archive], str]:
    def run(archive: Archive) -> str:
        action = archive.step(c.STEP_ACTION)
        seal = next(s for s in archive.seals() if s["traceId"] == action["traceId"])
        edit(seal)
        return str(seal["spanId"])

    return run


def attribute_value(span: Line, key: str) -> Any:
    for item in span.get("attributes", []):
        if item["key"] == key:
            return item["value"]["arrayValue"]["values"]
    return []


ATTACKS = [
    Attack("change one attribute value", change_attribute, "altered_span"),
    Attack("change a timestamp", change_timestamp, "altered_span"),
    Attack("delete a span", delete_span, "missing_span"),
    Attack("add a span", add_span, "added_span"),
    Attack("reorder lines", reorder_lines, "reordered"),
    Attack("delete a whole trace from the middle", delete_trace_from_the_middle, "sequence_gap"),
    Attack("cut the tail of the stream", cut_the_tail, "truncated_tail"),
    Attack("replace a seal with one signed by another key", reseal_with_another_key, "unknown_key"),
    Attack("edit, then recompute every digest and the chain", rehash_after_edit, "bad_signature"),
    Attack("change the resource of a span", _resource_edit, "altered_span"),
    Attack("change the instrumentation scope", _scope_edit, "altered_span"),
    Attack("set a trace state", _field_edit(lambda s: s.update(traceState="x=forged")), "altered_span"),
    Attack("mark the parent remote", _field_edit(lambda s: s.update(flags=0x301)), "altered_span"),
    Attack(
        "claim attributes were dropped",
        _field_edit(lambda s: s.update(droppedAttributesCount=2)),
        "altered_span",
    ),
    Attack("insert an event", _field_edit(_reorder_events), "altered_span"),
    Attack(
        "re-parent the seal", _seal_edit(lambda s: s.update(parentSpanId="0123456789abcdef")), "altered_seal"
    ),
    Attack("move the seal's end", _seal_edit(lambda s: s.update(endTimeUnixNano="1")), "altered_seal"),
    Attack(
        "add an attribute to the seal",
        _seal_edit(lambda s: s["attributes"].append({"key": "note", "value": {"stringValue": "ok"}})),
        "altered_seal",
    ),
    Attack(
        "rewrite history, re-signed with the same key",
        rewrite_history_with_the_key,
        "rewritten_history",
        "kept",
    ),
    Attack(
        "fork the history (two checkpoints of one size)",
        rewrite_history_with_the_key,
        "forked_history",
        "consistency",
    ),
    Attack("prove a span that is not in the log", prove_a_forged_span, "not_in_log", "proof"),
]


def verify_attacked(
    attack: Attack, source: Path, work: Path, *, public_key: Path, private_key: Path, as_of: str
) -> tuple[int, dict[str, Any], str]:
    """Copy the archive, keep a checkpoint of it (as an auditor would), attack the copy, and
    check it the way the attack calls for. Returns the exit code, the JSON report and the span id
    the finding must name."""
    copy = Archive(source, work / "tampered", key=load_private_key(private_key))
    notes = checkpoint_notes(copy)
    middle = sorted(notes)[len(notes) // 2]
    kept = work / "kept.checkpoint"
    kept.write_text(notes[middle])
    span_id = attack.run(copy)
    copy.save()
    keys = ["--public-key", str(public_key)]
    if attack.check == "proof":
        args = ["--proof", str(copy.root / "forged.proof"), *keys]
    elif attack.check == "consistency":
        forged = work / "forged.checkpoint"
        forged.write_text(checkpoint_notes(copy)[middle])
        args = ["--consistency", str(kept), str(forged), "--archive", str(copy.root), *keys]
    else:
        args = ["--stream", "--archive", str(copy.root), *keys, "--as-of", as_of]
        if attack.check == "kept":
            args += ["--checkpoint", str(kept)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(["verify", *args, "--format", "json"])
    return code, json.loads(out.getvalue()), span_id


def stream_only(source: Path, target: Path, stream: str) -> Path:
    """Copy of an archive with only the traces one stream sealed (a shared collector archive also
    holds other tests' evidence)."""
    traces: set[str] = set()
    lines_out: list[str] = []
    files = sorted(source.rglob("*.jsonl"))
    for path in files:
        for text in path.read_text(encoding="utf-8").split("\n"):
            if text.strip():
                for record in decode_traces(json.loads(text)):
                    if record.is_seal and record.attributes.get(c.SEAL_STREAM) == stream:
                        traces.add(record.trace_id)
    for path in files:
        for text in path.read_text(encoding="utf-8").split("\n"):
            if not text.strip():
                continue
            kept = [r for r in decode_traces(json.loads(text)) if r.trace_id in traces]
            if kept:
                lines_out.append(dumps_line(kept))
    target.mkdir(parents=True)
    (target / "spans.jsonl").write_text("".join(lines_out))
    return target

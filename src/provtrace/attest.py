"""A decision chain as an in-toto attestation: a Statement v1 whose subjects are the digests of
the trace's seals, wrapped in a DSSE envelope signed with the provtrace Ed25519 key, and the
check of such an envelope (``provtrace verify --in-toto FILE``).

The seals already commit to every span's digest, so the statement needs to name only them; its
predicate summarises the decision (who, as which identity, what changed) and says what the
exporter found when it verified the evidence, so a reader sees the verdict it was signed with.
Envelopes handed to ``check_envelope`` are untrusted: every field is checked before use.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provtrace import __about__
from provtrace import conventions as c
from provtrace import jsonshape as shape
from provtrace.integrity import key_id_of
from provtrace.reconstruct import DecisionChain
from provtrace.report.verdicts import Verdicts
from provtrace.verify import BAD_SIGNATURE, ERROR, INFO, SIGNATURES_UNCHECKED, UNKNOWN_KEY, Keys, Report

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://provtrace.dev/attestation/decision-chain/v1"

# Finding kinds of an envelope check (besides verify's bad_signature, unknown_key, ...).
MALFORMED_STATEMENT = "malformed_statement"
SEAL_NOT_IN_EVIDENCE = "seal_not_in_evidence"
SEAL_NOT_ATTESTED = "seal_not_attested"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def statement(chain: DecisionChain, verdicts: Verdicts) -> dict[str, Any]:
    subjects = [
        {"name": f"provenance.seal/{seal.stream}/{seal.seq}", "digest": {"sha256": seal.digest}}
        for seal in chain.seals
        if _SHA256.match(seal.digest)
    ]
    decisions = [
        {
            "name": str(d.facts.get(c.DECISION_NAME, d.name)),
            "trigger": str(d.facts.get(c.DECISION_TRIGGER, "")),
            "actor": d.actor,
            "nhi": d.nhi,
            "service": d.service,
            "spanId": d.span_id,
        }
        for d in chain.decisions
    ]
    actions = [
        {
            "index": s.index,
            "spanId": s.span_id,
            "type": str(s.facts.get(c.ACTION_TYPE, "")),
            "target": str(s.facts.get(c.ACTION_TARGET, "")),
            "outcome": str(s.facts.get(c.OUTCOME, "")),
            "actor": s.actor,
            "nhi": s.nhi,
            "digests": {
                label: str(s.facts[key])
                for key, label in (
                    (c.ACTION_PARAMS_SHA256, "params"),
                    (c.CHANGE_BEFORE_SHA256, "before"),
                    (c.CHANGE_AFTER_SHA256, "after"),
                )
                if key in s.facts
            },
            "links": [{"type": link.link_type, "spanId": link.target_span_id} for link in s.links],
        }
        for s in chain.steps
        if s.step == c.STEP_ACTION
    ]
    findings = (
        sorted({f.kind for f in verdicts.report.findings if f.severity == ERROR}) if verdicts.report else []
    )
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "traceId": chain.trace_id,
            "source": verdicts.source,
            "completeness": chain.completeness,
            "integrity": verdicts.integrity,
            "integrityFindings": findings,
            "decisions": decisions,
            "actions": actions,
            "steps": len(chain.steps),
            "seals": [
                {"stream": s.stream, "seq": s.seq, "spanId": s.span_id, "keyId": s.key_id, "spans": s.covered}
                for s in chain.seals
            ],
            "exporter": {"name": "provtrace", "version": __about__.__version__},
        },
    }


def envelope(payload: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    signature = key.sign(pae(PAYLOAD_TYPE, body))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(body).decode("ascii"),
        "signatures": [
            {"keyid": key_id_of(key.public_key()), "sig": base64.b64encode(signature).decode("ascii")}
        ],
    }


@dataclasses.dataclass
class EnvelopeCheck:
    """What ``check_envelope`` found: the report, who signed, and the statement it carried."""

    report: Report
    signed_by: list[str]
    statement: dict[str, Any] | None

    @property
    def subjects(self) -> list[str]:
        if not self.statement:
            return []
        return [s["digest"]["sha256"] for s in self.statement.get("subject", [])]

    @property
    def trace_id(self) -> str:
        predicate = (self.statement or {}).get("predicate")
        trace_id = predicate.get("traceId") if isinstance(predicate, dict) else None
        return trace_id if isinstance(trace_id, str) else ""


def _b64(value: object, what: str) -> bytes:
    return shape.base64_bytes(shape.text(value, what), what)


def _signatures(envelope_data: Mapping[str, Any], body: bytes, keys: Keys, report: Report) -> list[str]:
    signed_by: list[str] = []
    message = pae(PAYLOAD_TYPE, body)
    for item in shape.items(envelope_data.get("signatures"), "signatures"):
        entry = shape.obj(item, "signature")
        signature = _b64(entry.get("sig"), "signature sig")
        key_id = entry.get("keyid")
        key_id = key_id if isinstance(key_id, str) else ""
        candidates = (
            [keys.by_id[key_id]] if key_id in keys.by_id else ([] if key_id else list(keys.by_id.values()))
        )
        if not candidates:
            if keys.given:
                report.add(
                    UNKNOWN_KEY,
                    ERROR,
                    f"the envelope is signed by {key_id or 'an unnamed key'}, not a trusted key",
                )
            continue
        for candidate in candidates:
            try:
                candidate.verify(signature, message)
            except InvalidSignature:
                continue
            signed_by.append(key_id_of(candidate))
            break
        else:
            report.add(
                BAD_SIGNATURE,
                ERROR,
                f"the signature of {key_id or 'an unnamed key'} does not match the statement",
            )
    return signed_by


def _statement(body: bytes, report: Report) -> dict[str, Any] | None:
    data = shape.parse(body, "the envelope's payload")
    if not isinstance(data, dict):
        raise shape.ShapeError("the envelope's payload is not a JSON object")
    problems = []
    if data.get("_type") != STATEMENT_TYPE:
        problems.append(f"_type is not {STATEMENT_TYPE}")
    subjects = data.get("subject")
    if not isinstance(subjects, list) or not subjects:
        problems.append("it names no subject")
    else:
        for subject in subjects:
            digest = subject.get("digest") if isinstance(subject, dict) else None
            value = digest.get("sha256") if isinstance(digest, dict) else None
            if not (isinstance(value, str) and _SHA256.match(value)):
                problems.append("a subject has no sha256 digest")
                break
    if data.get("predicateType") != PREDICATE_TYPE:
        problems.append(f"predicateType is not {PREDICATE_TYPE}")
    if not isinstance(data.get("predicate"), dict):
        problems.append("it has no predicate object")
    for problem in problems:
        report.add(MALFORMED_STATEMENT, ERROR, f"not a provtrace statement: {problem}")
    return None if problems else data


def check_envelope(raw: bytes, keys: Keys) -> EnvelopeCheck:
    """Signature and shape of a DSSE envelope holding a provtrace statement. Raises
    ``InputError`` (``ShapeError``) when the file is no DSSE envelope at all."""
    report = Report()
    data = shape.obj(shape.parse(raw, "the in-toto envelope"), "the in-toto envelope")
    payload_type = shape.text(data.get("payloadType"), "payloadType")
    body = _b64(data.get("payload"), "payload")
    signed_by: list[str] = []
    if payload_type != PAYLOAD_TYPE:
        report.add(MALFORMED_STATEMENT, ERROR, f"payloadType is {payload_type!r}, not {PAYLOAD_TYPE}")
    else:
        signed_by = _signatures(data, body, keys, report)
    if not keys.given:
        report.add(
            SIGNATURES_UNCHECKED,
            ERROR,
            "the envelope's signature was not checked: no trusted public key was given (--public-key FILE)",
        )
    elif payload_type == PAYLOAD_TYPE and not signed_by and report.ok:
        report.add(BAD_SIGNATURE, ERROR, "the envelope carries no signature")
    found = _statement(body, report)
    return EnvelopeCheck(report, signed_by, found)


def compare_seals(check: EnvelopeCheck, chain: DecisionChain) -> None:
    """Whether the attested seals are the seals of the trace in the evidence."""
    present = {seal.digest for seal in chain.seals}
    for digest in check.subjects:
        if digest not in present:
            check.report.add(
                SEAL_NOT_IN_EVIDENCE,
                ERROR,
                f"the attested seal {digest} is not in the evidence of trace {chain.trace_id}",
                trace_id=chain.trace_id,
            )
    for seal in chain.seals:
        if seal.digest not in check.subjects:
            check.report.add(
                SEAL_NOT_ATTESTED,
                INFO,
                f"seal #{seal.seq} of {seal.stream} was sealed after the attestation or left out of it",
                trace_id=chain.trace_id,
                span_id=seal.span_id,
            )

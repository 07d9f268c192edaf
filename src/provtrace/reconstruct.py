"""Rebuild a decision chain from the spans of one trace, whatever source they came from.

The chain lists every step in time order with the facts an investigator asks for (who, as which
identity, using which secret, under which policy and approval, what changed, was it verified) and
resolves each causal link to the step it points at.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from provtrace import conventions as c
from provtrace.model import SpanRecord

_FACT_KEYS: dict[str, tuple[str, ...]] = {
    c.STEP_DECISION: (c.DECISION_NAME, c.DECISION_TRIGGER),
    c.STEP_LLM_CALL: (
        c.GEN_AI_PROVIDER_NAME,
        c.GEN_AI_REQUEST_MODEL,
        c.GEN_AI_RESPONSE_MODEL,
        c.GEN_AI_RESPONSE_ID,
        c.INPUT_SHA256,
        c.OUTPUT_SHA256,
    ),
    c.STEP_TOOL_CALL: (c.GEN_AI_TOOL_NAME, c.MCP_METHOD_NAME, c.INPUT_SHA256, c.OUTPUT_SHA256),
    c.STEP_SECRET_FETCH: (c.SECRET_STORE, c.SECRET_REF, c.SECRET_VERSION),
    c.STEP_POLICY_CHECK: (
        c.POLICY_ID,
        c.POLICY_VERSION,
        c.POLICY_ENGINE,
        c.POLICY_DECISION,
        c.POLICY_REASON,
        c.INPUT_SHA256,
    ),
    c.STEP_APPROVAL: (
        c.APPROVAL_APPROVER_ID,
        c.APPROVAL_METHOD,
        c.APPROVAL_TICKET,
        c.APPROVAL_DECISION,
        c.APPROVAL_REASON,
        c.APPROVAL_PARAMS_SHA256,
        c.APPROVAL_EXPIRES_AT,
    ),
    c.STEP_ACTION: (
        c.ACTION_TYPE,
        c.ACTION_TARGET,
        c.ACTION_PRIVILEGED,
        c.ACTION_PARAMS_SHA256,
        c.OUTCOME,
        c.GUARD_VIOLATIONS,
        c.CHANGE_BEFORE_SHA256,
        c.CHANGE_AFTER_SHA256,
    ),
    c.STEP_VERIFICATION: (c.VERIFICATION_METHOD, c.VERIFICATION_RESULT, c.VERIFICATION_DETAIL),
}


@dataclasses.dataclass(frozen=True)
class ChainLink:
    link_type: str
    target_span_id: str
    target_index: int | None  # position of the target in the chain, None if outside the trace
    target_label: str


@dataclasses.dataclass(frozen=True)
class ChainStep:
    index: int
    step: str
    name: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    actor: str
    nhi: str
    status: str
    facts: dict[str, Any]
    links: tuple[ChainLink, ...]
    service: str


@dataclasses.dataclass(frozen=True)
class SealSummary:
    stream: str
    seq: int
    completeness: str
    violations: tuple[str, ...]
    reason: str
    signed: bool
    covered: int
    withheld: int


@dataclasses.dataclass(frozen=True)
class DecisionChain:
    trace_id: str
    decisions: tuple[ChainStep, ...]
    steps: tuple[ChainStep, ...]
    seals: tuple[SealSummary, ...]
    violations: tuple[dict[str, Any], ...]
    other_spans: int

    @property
    def completeness(self) -> str:
        verdicts = {seal.completeness for seal in self.seals if seal.covered or seal.withheld}
        if not self.seals:
            return "unsealed"
        if c.COMPLETENESS_INCOMPLETE in verdicts or self.violations:
            return c.COMPLETENESS_INCOMPLETE
        if verdicts == {c.COMPLETENESS_COMPLETE}:
            return c.COMPLETENESS_COMPLETE
        return c.COMPLETENESS_UNCHECKED

    def as_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "completeness": self.completeness,
            "decisions": [dataclasses.asdict(d) for d in self.decisions],
            "steps": [dataclasses.asdict(s) for s in self.steps],
            "seals": [dataclasses.asdict(s) for s in self.seals],
            "violations": list(self.violations),
            "other_spans": self.other_spans,
        }


def _label(record: SpanRecord) -> str:
    return record.name


def _status(record: SpanRecord) -> str:
    return {0: "unset", 1: "ok", 2: "error"}.get(record.status_code, "unset")


def reconstruct(trace_id: str, records: Sequence[SpanRecord]) -> DecisionChain:
    provenance = sorted((r for r in records if r.step), key=lambda r: (r.start_ns, r.end_ns))
    numbered = [r for r in provenance if r.step != c.STEP_DECISION]
    index = {r.span_id: i for i, r in enumerate(numbered, 1)}
    by_id = {r.span_id: r for r in records}
    steps: list[ChainStep] = []
    for record in provenance:
        links = []
        for link in record.links:
            target = by_id.get(link.span_id)
            links.append(
                ChainLink(
                    link_type=link.link_type or "link",
                    target_span_id=link.span_id,
                    target_index=index.get(link.span_id),
                    target_label=_label(target) if target else f"span {link.span_id} (not in this trace)",
                )
            )
        step = record.step or ""
        facts = {key: record.attributes[key] for key in _FACT_KEYS.get(step, ()) if key in record.attributes}
        steps.append(
            ChainStep(
                index=index.get(record.span_id, 0),
                step=step,
                name=record.name,
                span_id=record.span_id,
                parent_span_id=record.parent_span_id,
                start_ns=record.start_ns,
                end_ns=record.end_ns,
                actor=str(record.attributes.get(c.ACTOR_ID, "")),
                nhi=str(record.attributes.get(c.NHI_ID, "")),
                status=_status(record),
                facts=facts,
                links=tuple(links),
                service=record.service_name,
            )
        )
    seals = [
        SealSummary(
            stream=record.attr_str(c.SEAL_STREAM) or "",
            seq=record.attr_int(c.SEAL_SEQ),
            completeness=record.attr_str(c.SEAL_COMPLETENESS) or "",
            violations=record.attr_strings(c.SEAL_VIOLATIONS),
            reason=record.attr_str(c.SEAL_REASON) or "",
            signed=bool(record.attr_str(c.SEAL_SIGNATURE)),
            covered=len(record.attr_strings(c.SEAL_SPANS)),
            withheld=len(record.attr_strings(c.SEAL_WITHHELD)),
        )
        for record in records
        if record.is_seal
    ]
    violations: list[dict[str, Any]] = []
    for record in records:
        if record.name == c.VIOLATION_SPAN_NAME:
            quarantine_id = record.attr_str(c.VIOLATION_QUARANTINE_ID) or ""
            for detail in record.attr_strings(c.VIOLATION_DETAILS):
                violations.append({**json.loads(detail), "quarantine_id": quarantine_id})
    decisions = tuple(s for s in steps if s.step == c.STEP_DECISION)
    known = {s.span_id for s in steps}
    other = sum(
        1 for r in records if r.span_id not in known and not r.is_seal and r.name != c.VIOLATION_SPAN_NAME
    )
    return DecisionChain(
        trace_id=trace_id,
        decisions=decisions,
        steps=tuple(s for s in steps if s.step != c.STEP_DECISION),
        seals=tuple(sorted(seals, key=lambda s: (s.stream, s.seq))),
        violations=tuple(violations),
        other_spans=other,
    )

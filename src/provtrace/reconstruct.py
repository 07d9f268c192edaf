"""Rebuild a decision chain from the spans of one trace, whatever source they came from.

The chain lists every step in causal order (a step before the steps nested in it, siblings by
start time) with the facts an investigator asks for (who, as which identity, using which secret,
under which policy and approval, what changed, was it verified), the content each step recorded,
and each causal link resolved to the step it points at. The two halves of a call that crossed a
service boundary (an MCP client's span and the server's span parented on it) are one step.

Spans are untrusted input: parents may be missing or form cycles, attributes may have any type;
the chain is built without recursion and without assuming any of it is well formed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from provtrace import conventions as c
from provtrace.model import KIND_CLIENT, KIND_SERVER, AttrValue, SpanRecord
from provtrace.recorded import Content, contents_of

_FACT_KEYS: dict[str, tuple[str, ...]] = {
    c.STEP_DECISION: (c.DECISION_NAME, c.DECISION_TRIGGER),
    c.STEP_LLM_CALL: (
        c.GEN_AI_OPERATION_NAME,
        c.GEN_AI_PROVIDER_NAME,
        c.GEN_AI_REQUEST_MODEL,
        c.GEN_AI_RESPONSE_MODEL,
        c.GEN_AI_RESPONSE_ID,
        c.GEN_AI_RESPONSE_FINISH_REASONS,
        c.GEN_AI_USAGE_INPUT_TOKENS,
        c.GEN_AI_USAGE_OUTPUT_TOKENS,
        c.INPUT_SHA256,
        c.OUTPUT_SHA256,
    ),
    c.STEP_TOOL_CALL: (
        c.GEN_AI_TOOL_NAME,
        c.GEN_AI_TOOL_CALL_ID,
        c.MCP_METHOD_NAME,
        c.MCP_SESSION_ID,
        c.JSONRPC_REQUEST_ID,
        c.CLAIM_SERVER_NAME,
        c.ERROR_TYPE,
        c.INPUT_SHA256,
        c.OUTPUT_SHA256,
    ),
    c.STEP_SECRET_FETCH: (c.SECRET_STORE, c.SECRET_REF, c.SECRET_VERSION),
    c.STEP_POLICY_CHECK: (
        c.POLICY_ID,
        c.POLICY_VERSION,
        c.POLICY_ENGINE,
        c.POLICY_DECISION,
        c.POLICY_REASON,
        c.POLICY_ACTIONS,
        c.INPUT_SHA256,
    ),
    c.STEP_APPROVAL: (
        c.APPROVAL_APPROVER_ID,
        c.APPROVAL_METHOD,
        c.APPROVAL_TICKET,
        c.APPROVAL_DECISION,
        c.APPROVAL_REASON,
        c.APPROVAL_PARAMS_SHA256,
        c.APPROVAL_NONCE,
        c.APPROVAL_EXPIRES_AT,
    ),
    c.STEP_ACTION: (
        c.ACTION_TYPE,
        c.ACTION_TARGET,
        c.ACTION_PRIVILEGED,
        c.ACTION_PARAMS_SHA256,
        c.ACTION_REQUIRE,
        c.PARAMS_INEXACT,
        c.OUTCOME,
        c.GUARD_VIOLATIONS,
        c.CHANGE_BEFORE_SHA256,
        c.CHANGE_AFTER_SHA256,
    ),
    c.STEP_VERIFICATION: (c.VERIFICATION_METHOD, c.VERIFICATION_RESULT, c.VERIFICATION_DETAIL),
}
_CLAIMS = (c.CLAIM_ACTOR_ID, c.CLAIM_NHI_ID, c.CLAIM_CLIENT_NAME, c.CLAIM_CLIENT_VERSION, c.CLAIM_PARENT)
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS = {0: "unset", 1: "ok", 2: "error"}


@dataclasses.dataclass(frozen=True)
class ChainLink:
    link_type: str
    target_span_id: str
    target_index: int | None  # position of the target in the chain, None if outside the trace
    target_label: str
    tool_call_id: str = ""  # the proposal a triggered_by link names


@dataclasses.dataclass(frozen=True)
class CallSide:
    """The server's half of a call whose client half is the step: what the server recorded."""

    span_id: str
    name: str
    service: str
    actor: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str
    contents: tuple[Content, ...]
    claims: dict[str, str]
    errors: tuple[str, ...]
    same_content: bool  # every digest the server recorded equals the client's
    attributes: Mapping[str, AttrValue] = dataclasses.field(default_factory=dict, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "span_id": self.span_id,
            "name": self.name,
            "service": self.service,
            "actor": self.actor,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "status": self.status,
            "status_message": self.status_message,
            "contents": [part.as_json() for part in self.contents],
            "claims": dict(self.claims),
            "errors": list(self.errors),
            "same_content": self.same_content,
        }


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
    parent_index: int = 0  # the step this one is nested in (0: directly in the decision)
    depth: int = 0
    kind: str = "internal"
    status_message: str = ""
    contents: tuple[Content, ...] = ()
    server: CallSide | None = None
    errors: tuple[str, ...] = ()  # recorded exceptions, "Type: message"
    attributes: Mapping[str, AttrValue] = dataclasses.field(default_factory=dict, compare=False)

    def content(self, label: str) -> Content | None:
        return next((part for part in self.contents if part.label == label), None)

    @property
    def span_ids(self) -> tuple[str, ...]:
        """The spans this step stands for (two for a call with both sides)."""
        return (self.span_id, self.server.span_id) if self.server else (self.span_id,)

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "step": self.step,
            "name": self.name,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "parent_index": self.parent_index,
            "depth": self.depth,
            "kind": self.kind,
            "service": self.service,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "actor": self.actor,
            "nhi": self.nhi,
            "status": self.status,
            "status_message": self.status_message,
            "errors": list(self.errors),
            "facts": dict(self.facts),
            "links": [dataclasses.asdict(link) for link in self.links],
            "contents": [part.as_json() for part in self.contents],
            "server": self.server.as_json() if self.server else None,
        }


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
    span_id: str = ""
    digest: str = ""
    key_id: str = ""


@dataclasses.dataclass(frozen=True)
class DecisionChain:
    trace_id: str
    decisions: tuple[ChainStep, ...]
    steps: tuple[ChainStep, ...]
    seals: tuple[SealSummary, ...]
    violations: tuple[dict[str, Any], ...]
    other_spans: int
    other_names: tuple[str, ...] = ()
    checkpoints: int = 0  # signed Merkle checkpoints beside the seals

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

    def step_at(self, index: int) -> ChainStep | None:
        return next((s for s in self.steps if s.index == index), None)

    def step_of_span(self, span_id: str) -> ChainStep | None:
        return next((s for s in self.steps if span_id in s.span_ids), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "completeness": self.completeness,
            "decisions": [d.as_json() for d in self.decisions],
            "steps": [s.as_json() for s in self.steps],
            "seals": [dataclasses.asdict(s) for s in self.seals],
            "violations": list(self.violations),
            "other_spans": self.other_spans,
        }


def _text(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _errors(record: SpanRecord) -> tuple[str, ...]:
    out = []
    for event in record.events:
        if event.name == "exception":
            kind = _text(event.attributes.get("exception.type")) or "exception"
            message = _text(event.attributes.get("exception.message"))
            out.append(f"{kind}: {message}" if message else kind)
    return tuple(out)


def _is_server_half(record: SpanRecord, by_id: Mapping[str, SpanRecord]) -> bool:
    parent = by_id.get(record.parent_span_id)
    return (
        record.kind == KIND_SERVER
        and record.step == c.STEP_TOOL_CALL
        and parent is not None
        and parent.kind == KIND_CLIENT
        and parent.step == c.STEP_TOOL_CALL
    )


def _server_side(record: SpanRecord, client: SpanRecord) -> CallSide:
    contents = contents_of(record)
    same = all(
        client.attr_str(part.digest_attribute) == part.sha256 for part in contents if part.sha256 is not None
    )
    return CallSide(
        span_id=record.span_id,
        name=record.name,
        service=record.service_name,
        actor=_text(record.attributes.get(c.ACTOR_ID)),
        start_ns=record.start_ns,
        end_ns=record.end_ns,
        status=_STATUS.get(record.status_code, "unset"),
        status_message=record.status_message,
        contents=contents,
        claims={key: _text(record.attributes[key]) for key in _CLAIMS if key in record.attributes},
        errors=_errors(record),
        same_content=same,
        attributes=record.attributes,
    )


def _order(record: SpanRecord) -> tuple[int, int, str]:
    return (record.start_ns, record.end_ns, record.span_id)


class _Tree:
    """Steps nested by their nearest step ancestor, numbered depth first in start order."""

    def __init__(self, records: Sequence[SpanRecord]) -> None:
        self.by_id = {r.span_id: r for r in records}
        provenance = sorted((r for r in records if r.step), key=_order)
        candidates = [r for r in provenance if r.step != c.STEP_DECISION]
        self.server_of: dict[str, SpanRecord] = {}
        self.client_of: dict[str, str] = {}
        for record in candidates:
            if _is_server_half(record, self.by_id) and record.parent_span_id not in self.server_of:
                self.server_of[record.parent_span_id] = record
                self.client_of[record.span_id] = record.parent_span_id
        self.steps = [r for r in candidates if r.span_id not in self.client_of]
        step_ids = {r.span_id for r in self.steps}
        self.parent = {r.span_id: self._nearest_step(r, step_ids) for r in self.steps}
        self._break_cycles()
        self.order, self.depth = self._number()

    def _nearest_step(self, record: SpanRecord, step_ids: set[str]) -> str:
        seen = {record.span_id}
        current = record.parent_span_id
        while current and current not in seen:
            seen.add(current)
            current = self.client_of.get(current, current)
            if current in step_ids and current != record.span_id:
                return current
            ancestor = self.by_id.get(current)
            if ancestor is None or ancestor.step == c.STEP_DECISION:
                return ""
            current = ancestor.parent_span_id
        return ""

    def _break_cycles(self) -> None:
        for span_id in self.parent:
            seen = {span_id}
            current = self.parent[span_id]
            while current:
                if current in seen:
                    self.parent[span_id] = ""  # a loop of parents: this step is made top level
                    break
                seen.add(current)
                current = self.parent.get(current, "")

    def _number(self) -> tuple[list[SpanRecord], dict[str, int]]:
        children: dict[str, list[SpanRecord]] = {}
        for record in self.steps:  # already in start order
            children.setdefault(self.parent[record.span_id], []).append(record)
        order: list[SpanRecord] = []
        depth: dict[str, int] = {}
        stack = [(record, 0) for record in reversed(children.get("", []))]
        while stack:
            record, level = stack.pop()
            order.append(record)
            depth[record.span_id] = level
            stack.extend((child, level + 1) for child in reversed(children.get(record.span_id, [])))
        return order, depth


def _violations(records: Sequence[SpanRecord]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for record in records:
        if record.name != c.VIOLATION_SPAN_NAME:
            continue
        quarantine_id = record.attr_str(c.VIOLATION_QUARANTINE_ID) or ""
        for detail in record.attr_strings(c.VIOLATION_DETAILS):
            try:
                parsed = json.loads(detail)
            except (ValueError, RecursionError):
                parsed = None
            fields = {k: _text(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
            out.append(
                {"code": fields.pop("code", "") or "UNREADABLE", **fields, "quarantine_id": quarantine_id}
            )
    return out


def _seal(record: SpanRecord) -> SealSummary:
    return SealSummary(
        stream=record.attr_str(c.SEAL_STREAM) or "",
        seq=record.attr_int(c.SEAL_SEQ),
        completeness=record.attr_str(c.SEAL_COMPLETENESS) or "",
        violations=record.attr_strings(c.SEAL_VIOLATIONS),
        reason=record.attr_str(c.SEAL_REASON) or "",
        signed=bool(record.attr_str(c.SEAL_SIGNATURE)),
        covered=len(record.attr_strings(c.SEAL_SPANS)),
        withheld=len(record.attr_strings(c.SEAL_WITHHELD)),
        span_id=record.span_id,
        digest=record.attr_str(c.SEAL_DIGEST) or "",
        key_id=record.attr_str(c.SEAL_KEY_ID) or "",
    )


def _step(record: SpanRecord, tree: _Tree, index: dict[str, int], *, step_index: int = 0) -> ChainStep:
    links = []
    for link in record.links:
        target = tree.by_id.get(link.span_id)
        links.append(
            ChainLink(
                link_type=link.link_type or "link",
                target_span_id=link.span_id,
                target_index=index.get(link.span_id),
                target_label=target.name if target else f"span {link.span_id} (not in this trace)",
                tool_call_id=_text(link.attributes.get(c.GEN_AI_TOOL_CALL_ID)),
            )
        )
    step = record.step or ""
    server = tree.server_of.get(record.span_id)
    return ChainStep(
        index=step_index,
        step=step,
        name=record.name,
        span_id=record.span_id,
        parent_span_id=record.parent_span_id,
        start_ns=record.start_ns,
        end_ns=record.end_ns,
        actor=_text(record.attributes.get(c.ACTOR_ID)),
        nhi=_text(record.attributes.get(c.NHI_ID)),
        status=_STATUS.get(record.status_code, "unset"),
        facts={key: record.attributes[key] for key in _FACT_KEYS.get(step, ()) if key in record.attributes},
        links=tuple(links),
        service=record.service_name,
        parent_index=index.get(tree.parent.get(record.span_id, ""), 0),
        depth=tree.depth.get(record.span_id, 0),
        kind=_KINDS.get(record.kind, "unspecified"),
        status_message=record.status_message,
        contents=contents_of(record),
        server=_server_side(server, record) if server else None,
        errors=_errors(record),
        attributes=record.attributes,
    )


def reconstruct(trace_id: str, records: Sequence[SpanRecord]) -> DecisionChain:
    tree = _Tree(records)
    index = {r.span_id: i for i, r in enumerate(tree.order, 1)}
    index.update({server: index[client] for server, client in tree.client_of.items() if client in index})
    steps = tuple(_step(r, tree, index, step_index=index[r.span_id]) for r in tree.order)
    decisions = tuple(_step(r, tree, index) for r in sorted(records, key=_order) if r.step == c.STEP_DECISION)
    known = {span_id for s in (*steps, *decisions) for span_id in s.span_ids}
    machinery = {c.VIOLATION_SPAN_NAME, c.CHECKPOINT_SPAN_NAME}  # integrity records, not activity
    other = sorted(
        (r for r in records if r.span_id not in known and not r.is_seal and r.name not in machinery),
        key=_order,
    )
    seals = sorted((_seal(r) for r in records if r.is_seal), key=lambda s: (s.stream, s.seq))
    return DecisionChain(
        trace_id=trace_id,
        decisions=decisions,
        steps=steps,
        seals=tuple(seals),
        violations=tuple(_violations(records)),
        other_spans=len(other),
        other_names=tuple(r.name for r in other),
        checkpoints=sum(1 for r in records if r.name == c.CHECKPOINT_SPAN_NAME),
    )

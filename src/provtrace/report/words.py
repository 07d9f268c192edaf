"""What each step did and what it recorded, in the investigator's words, for every format.

Renderers get plain structures from here (one-line descriptions, content blocks of lines, notes
that compare steps with each other) and only decide how they look. Every string that came from
the evidence passes through ``printable`` before it is shown: content may hold terminal control
sequences or line breaks meant to forge a line of the report.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from collections.abc import Iterable
from typing import Any

from provtrace import conventions as c
from provtrace.authorization import ActionEvidence, ApprovalEvidence, remaining_s
from provtrace.clock import Reading
from provtrace.reconstruct import ChainStep, DecisionChain
from provtrace.recorded import Content
from provtrace.report.basics import printable
from provtrace.report.diff import change_lines
from provtrace.report.jsontext import WIDTH, fit

# Lines kept per content block before it is folded (text, markdown; --full shows all).
FOLD_LINES = 12


@dataclasses.dataclass(frozen=True)
class Line:
    """One line of content; ``style`` says what it is: "" (plain), "role", "call", "json",
    "add", "remove", "hunk", "error"."""

    text: str
    style: str = ""


@dataclasses.dataclass(frozen=True)
class Block:
    """One part of a step's content as shown: a title, its digests and what to know about it."""

    title: str
    digests: tuple[tuple[str, str], ...]  # (label, full hex digest)
    notes: tuple[str, ...]
    lines: tuple[Line, ...]


def _fact(step: ChainStep, key: str, default: str = "?") -> str:
    value = step.facts.get(key)
    return printable(str(value)) if value is not None else default


def describe(step: ChainStep) -> str:
    """One line that says what the step did."""
    f = step.facts
    if step.step == c.STEP_LLM_CALL:
        return f"asked {_fact(step, c.GEN_AI_PROVIDER_NAME)} model {_fact(step, c.GEN_AI_REQUEST_MODEL)}"
    if step.step == c.STEP_TOOL_CALL:
        via = f" over MCP ({_fact(step, c.MCP_METHOD_NAME)})" if c.MCP_METHOD_NAME in f else ""
        error = " → tool error" if f.get(c.ERROR_TYPE) else ""
        return f"called tool {_fact(step, c.GEN_AI_TOOL_NAME)}{via}{error}"
    if step.step == c.STEP_SECRET_FETCH:
        version = f" version {_fact(step, c.SECRET_VERSION)}" if c.SECRET_VERSION in f else ""
        return f"fetched secret {_fact(step, c.SECRET_REF)}{version} from {_fact(step, c.SECRET_STORE)}"
    if step.step == c.STEP_POLICY_CHECK:
        version = f" v{_fact(step, c.POLICY_VERSION)}" if c.POLICY_VERSION in f else ""
        engine = f" ({_fact(step, c.POLICY_ENGINE)})" if c.POLICY_ENGINE in f else ""
        verdict = _fact(step, c.POLICY_DECISION, "NO VERDICT")
        return f"policy {_fact(step, c.POLICY_ID)}{version}{engine} → {verdict}"
    if step.step == c.STEP_APPROVAL:
        via = f" via {_fact(step, c.APPROVAL_METHOD)}" if c.APPROVAL_METHOD in f else ""
        ticket = f" ({_fact(step, c.APPROVAL_TICKET)})" if c.APPROVAL_TICKET in f else ""
        verdict = _fact(step, c.APPROVAL_DECISION, "NO VERDICT")
        return f"{_fact(step, c.APPROVAL_APPROVER_ID)}{via}{ticket} → {verdict}"
    if step.step == c.STEP_ACTION:
        privileged = " [privileged]" if f.get(c.ACTION_PRIVILEGED) is True else ""
        codes = f.get(c.GUARD_VIOLATIONS, ())
        refused = f" ({printable(', '.join(map(str, codes)))})" if isinstance(codes, tuple) and codes else ""
        return (
            f"{_fact(step, c.ACTION_TYPE)} on {_fact(step, c.ACTION_TARGET)}{privileged} → "
            f"{_fact(step, c.OUTCOME, 'NO OUTCOME')}{refused}"
        )
    if step.step == c.STEP_VERIFICATION:
        method = f" by {_fact(step, c.VERIFICATION_METHOD)}" if c.VERIFICATION_METHOD in f else ""
        return f"verified{method} → {_fact(step, c.VERIFICATION_RESULT, 'NO RESULT')}"
    return printable(step.name)


def says_error(step: ChainStep) -> bool:
    """Whether a header should add ERROR: not when the outcome already says the step failed."""
    outcome = step.facts.get(c.OUTCOME)
    return step.status == "error" and outcome not in (c.OUTCOME_FAILURE, c.OUTCOME_REFUSED)


def who(step: ChainStep, home: ChainStep | None) -> str:
    """Actor, identity and service where they differ from the decision's (said once there)."""
    parts = []
    if step.actor and (home is None or step.actor != home.actor):
        parts.append(f"actor {printable(step.actor)}")
    if step.nhi and (home is None or step.nhi != home.nhi):
        parts.append(f"as {printable(step.nhi)}")
    if step.service and home is not None and step.service != home.service:
        parts.append(f"in {printable(step.service)}")
    if step.server is not None:
        parts.append(f"⇄ {printable(step.server.service or '?')}")
    return ", ".join(parts)


# --- content --------------------------------------------------------------------------------


def json_lines(value: Any, style: str = "json") -> list[Line]:
    return [Line(printable(text), style) for text in fit(value)]


def _text_lines(text: str, style: str = "") -> list[Line]:
    return [Line(printable(part), style) for part in text.split("\n")]


def _compact(value: Any) -> str:
    return printable(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _part_lines(role: str, part: Any) -> list[Line]:
    if not isinstance(part, dict):
        return [Line(f"{role}: {_compact(part)}", "role")]
    kind = part.get("type")
    if kind in ("text", "reasoning") and isinstance(part.get("content"), str):
        label = role if kind == "text" else f"{role} (reasoning)"
        first, *rest = _text_lines(part["content"])
        return [Line(f"{label}: {first.text}", "role"), *(Line("  " + r.text) for r in rest)]
    if kind == "tool_call":
        call_id = f" {printable(str(part.get('id')))}" if part.get("id") else ""
        head = f"→ proposes tool call{call_id} {printable(str(part.get('name', '?')))}"
        arguments = fit(part.get("arguments", {}), WIDTH - len(head) - 1)
        if len(arguments) == 1:
            return [Line(f"{head} {printable(arguments[0])}", "call")]
        return [
            Line(head, "call"),
            *(Line("    " + printable(text), "call") for text in fit(part.get("arguments"))),
        ]
    if kind == "tool_call_response":
        call_id = f" {printable(str(part.get('id')))}" if part.get("id") else ""
        return [Line(f"{role}: tool result{call_id} {_compact(part.get('response'))}", "role")]
    return [Line(f"{role}: {_compact(part)}", "role")]


def message_lines(value: Any) -> list[Line] | None:
    """GenAI messages (``[{"role", "parts": [...]}]`` or ``{"role", "content"}``) as one line
    per part; None when the value is not a list of messages."""
    messages = value if isinstance(value, list) else None
    if not messages or not all(isinstance(m, dict) and "role" in m for m in messages):
        return None
    out: list[Line] = []
    for message in messages:
        role = printable(str(message.get("role")))
        parts = message.get("parts")
        if isinstance(parts, list):
            for part in parts:
                out.extend(_part_lines(role, part))
        elif isinstance(message.get("content"), str):
            out.extend(_part_lines(role, {"type": "text", "content": message["content"]}))
        else:
            out.append(Line(f"{role}: {_compact(message)}", "role"))
    return out


def tool_result_lines(value: Any) -> list[Line] | None:
    """An MCP tool result (``content`` parts, ``structuredContent``, ``isError``)."""
    if not isinstance(value, dict) or not ({"content", "structuredContent"} & value.keys()):
        return None
    out = [Line("the tool reported an error (isError)", "error")] if value.get("isError") is True else []
    if "structuredContent" in value and value["structuredContent"] is not None:
        return out + json_lines(value["structuredContent"])
    parts = value.get("content")
    for part in parts if isinstance(parts, list) else [parts]:
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            out.extend(_text_lines(part["text"]))
        else:
            out.append(Line(_compact(part), "json"))
    return out


def content_lines(part: Content) -> list[Line]:
    if part.text is None:
        return []
    if not part.parsed:
        return _text_lines(part.text)
    shaped = None
    if part.attribute in (c.GEN_AI_INPUT_MESSAGES, c.GEN_AI_OUTPUT_MESSAGES):
        shaped = message_lines(part.value)
    elif part.attribute == c.GEN_AI_TOOL_CALL_RESULT:
        shaped = tool_result_lines(part.value)
    return shaped if shaped is not None else json_lines(part.value)


def content_notes(part: Content, capture: str) -> list[str]:
    notes = []
    if part.text is None:
        notes.append(f"content not recorded (capture mode {printable(capture or 'unknown')}); digest only")
    if part.truncated:
        notes.append("cut at the size cap when recorded: shown as stored")
    elif part.text is not None and not part.parsed:
        notes.append("stored text is not JSON: shown as stored")
    if part.redactions:
        notes.append(f"{part.redactions} value(s) redacted when recorded")
    if part.keyed:
        notes.append("keyed digest (HMAC), as the content held a secret: see provtrace digest --digest-key")
    return notes


def _capture(step: ChainStep) -> str:
    value = step.attributes.get(c.CAPTURE_MODE)
    return value if isinstance(value, str) else ""


def _block(part: Content, capture: str, title: str | None = None) -> Block:
    return Block(
        title=title or part.label,
        digests=((("sha256", part.sha256),) if part.sha256 else ()),
        notes=tuple(content_notes(part, capture)),
        lines=tuple(content_lines(part)),
    )


def _change_block(before: Content | None, after: Content | None, capture: str) -> Block:
    digests = tuple(
        (label, part.sha256) for label, part in (("before", before), ("after", after)) if part and part.sha256
    )
    notes: list[str] = []
    for label, part in (("before", before), ("after", after)):
        if part is not None:
            notes.extend(f"{label}: {note}" for note in content_notes(part, capture))
    lines = change_lines(before, after)
    return Block("change", digests, tuple(notes), tuple(Line(text, style) for text, style in lines))


def blocks(step: ChainStep) -> list[Block]:
    """The step's content, in the order an investigator reads it."""
    capture = _capture(step)
    out = []
    for part in step.contents:
        if part.label in ("before", "after"):
            continue
        out.append(_block(part, capture))
    before, after = step.content("before"), step.content("after")
    if before or after:
        out.append(_change_block(before, after, capture))
    return out


def _fact_lines(step: ChainStep) -> list[str]:
    f = step.facts
    lines = []
    if step.step == c.STEP_POLICY_CHECK and c.POLICY_REASON in f:
        lines.append(f"reason: {_fact(step, c.POLICY_REASON)}")
    if step.step == c.STEP_APPROVAL:
        if c.APPROVAL_REASON in f:
            lines.append(f"reason: {_fact(step, c.APPROVAL_REASON)}")
        lines.append(f"expires {_fact(step, c.APPROVAL_EXPIRES_AT)}, nonce {_fact(step, c.APPROVAL_NONCE)}")
    if step.step == c.STEP_VERIFICATION and c.VERIFICATION_DETAIL in f:
        lines.append(f"detail: {_fact(step, c.VERIFICATION_DETAIL)}")
    if step.step == c.STEP_ACTION:
        if c.ACTION_REQUIRE in f:
            lines.append(f"guard required: {printable(', '.join(map(str, _tuple(f[c.ACTION_REQUIRE]))))}")
        if c.PARAMS_INEXACT in f:
            lines.append(f"parameters not bound exactly: {_fact(step, c.PARAMS_INEXACT)}")
    if step.step == c.STEP_LLM_CALL:
        usage = [
            f"{label} {f[key]}"
            for key, label in ((c.GEN_AI_USAGE_INPUT_TOKENS, "in"), (c.GEN_AI_USAGE_OUTPUT_TOKENS, "out"))
            if key in f
        ]
        if usage:
            lines.append("tokens: " + ", ".join(printable(u) for u in usage))
    if step.status == "error":
        lines.append(f"status: error {printable(step.status_message)}".rstrip())
    lines.extend(f"exception: {printable(e)}" for e in step.errors if e != step.status_message)
    return lines


def _tuple(value: object) -> tuple[object, ...]:
    return value if isinstance(value, tuple) else (value,)


def link_lines(step: ChainStep, chain: DecisionChain) -> list[str]:
    out = []
    for link in step.links:
        target = chain.step_of_span(link.target_span_id)
        if target is not None:
            label = f"#{target.index} {printable(target.name)}"
        else:
            label = printable(link.target_label)
        call = f" (proposal {printable(link.tool_call_id)})" if link.tool_call_id else ""
        out.append(f"{printable(link.link_type)} → {label}{call}")
    return out


def _parse_rfc3339(text: str) -> int | None:
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp()) * 1_000_000_000


def _reading(step: ChainStep) -> Reading | None:
    return Reading.of(step.attributes, c.CLOCK_RUN, c.CLOCK_MONOTONIC)


def _expired_at(approval: ChainStep, expires_ns: int, action: ChainStep) -> bool:
    """Whether the approval had expired when the action started, judged as the guard and the
    rules judge it (by elapsed time within one process run, see ``provtrace.authorization``)."""
    given = ApprovalEvidence(
        approval.span_id, "", approval.start_ns, "", "", expires_at_ns=expires_ns, clock=_reading(approval)
    )
    started = ActionEvidence(action.span_id, "", action.start_ns, "", "", clock=_reading(action))
    return remaining_s(given, started) < 0


def _linked_actions(approval: ChainStep, chain: DecisionChain) -> Iterable[ChainStep]:
    for step in chain.steps:
        if any(
            link.link_type == c.LINK_APPROVED_BY and link.target_span_id == approval.span_id
            for link in step.links
        ):
            yield step


def observations(step: ChainStep, chain: DecisionChain) -> list[tuple[str, bool]]:
    """What the evidence says when steps are compared, each with whether it is a problem."""
    out: list[tuple[str, bool]] = []
    if step.step == c.STEP_APPROVAL:
        expires = _parse_rfc3339(str(step.facts.get(c.APPROVAL_EXPIRES_AT, "")))
        for action in _linked_actions(step, chain):
            same = step.facts.get(c.APPROVAL_PARAMS_SHA256) == action.facts.get(c.ACTION_PARAMS_SHA256)
            out.append(
                (
                    f"bound to the parameters of #{action.index}: "
                    + ("digests equal" if same else "DIGESTS DIFFER"),
                    not same,
                )
            )
            if expires is not None:
                late = _expired_at(step, expires, action)
                out.append(
                    (f"#{action.index} started {'AFTER' if late else 'before'} the approval expired", late)
                )
    if step.server is not None:
        side = step.server
        where = f"server side in {printable(side.service or '?')}, actor {printable(side.actor or '?')}"
        if side.same_content:
            out.append((f"{where}: same digests as the client", False))
        else:
            out.append((f"{where}: RECORDED OTHER CONTENT than the client", True))
        claimed = [
            f"{label} {printable(side.claims[key])}"
            for key, label in ((c.CLAIM_ACTOR_ID, "actor"), (c.CLAIM_NHI_ID, "identity"))
            if key in side.claims
        ]
        if claimed:
            out.append((f"the caller claimed {', '.join(claimed)} (self-reported)", False))
        if side.status == "error":
            out.append((f"server status: error {printable(side.status_message)}".rstrip(), True))
    return out


def detail_lines(step: ChainStep) -> list[str]:
    """Facts worth a line of their own (reasons, expiry, verification detail, errors)."""
    return _fact_lines(step)


def server_blocks(step: ChainStep) -> list[Block]:
    """The server's content, shown only where it differs from the client's."""
    if step.server is None or step.server.same_content:
        return []
    capture = _capture(step)
    return [_block(part, capture, f"server {part.label}") for part in step.server.contents]

"""The completeness contract: one table of rules, each with a stable code, and the profiles.

A rule is a plain callable taking a :class:`SegmentContext` and yielding :class:`Violation` s.
Users add their own through ``configure(rules=[...])``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from provtrace import conventions as c
from provtrace.authorization import (
    action_of,
    approval_of,
    approval_problems,
    policy_of,
    policy_problems,
)
from provtrace.clock import Reading
from provtrace.model import STATUS_ERROR, SpanRecord


@dataclasses.dataclass(frozen=True)
class Violation:
    """One finding; ``detail`` is machine-readable and never holds captured content."""

    code: str
    message: str
    span_id: str = ""
    step: str = ""
    attribute: str = ""

    @property
    def detail(self) -> dict[str, str]:
        out = {"code": self.code}
        for key in ("span_id", "step", "attribute"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


@dataclasses.dataclass
class SegmentContext:
    """What a rule sees: the segment, spans of the same trace flushed earlier, and leak findings."""

    trace_id: str
    records: Sequence[SpanRecord]
    profile: str = c.PROFILE_BASELINE
    reason: str = c.SEAL_REASON_ROOT_ENDED
    open_span_ids: Sequence[str] = ()
    earlier: Mapping[str, SpanRecord] = dataclasses.field(default_factory=dict)
    known_ids: frozenset[str] = frozenset()
    leaks: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)
    losses: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id: dict[str, SpanRecord] = {**self.earlier, **{r.span_id: r for r in self.records}}
        self.approval_findings: list[Violation] | None = None  # computed once, see _approval_findings

    def steps(self, step: str) -> Iterator[SpanRecord]:
        return (r for r in self.records if r.step == step)

    def resolve(self, span_id: str) -> SpanRecord | None:
        return self.by_id.get(span_id)


Rule = Callable[[SegmentContext], Iterable[Violation]]


def _has_decision_ancestor(ctx: SegmentContext, record: SpanRecord) -> tuple[bool, bool]:
    """Whether ``record`` sits under a decision, and whether its chain ends at a remote parent."""
    seen: set[str] = set()
    current: SpanRecord | None = record
    while current is not None and current.span_id not in seen:
        seen.add(current.span_id)
        if current.step == c.STEP_DECISION:
            return True, False
        if not current.parent_span_id:
            return False, False
        if current.parent_is_remote:
            return False, True
        current = ctx.resolve(current.parent_span_id)
    return False, True


def struct_root(ctx: SegmentContext) -> Iterator[Violation]:
    for record in ctx.records:
        if record.step is None or record.step == c.STEP_DECISION:
            continue
        under_decision, remote = _has_decision_ancestor(ctx, record)
        if not under_decision and not remote:
            yield Violation(
                c.RULE_STRUCT_ROOT,
                f"{record.step} span runs outside any decision",
                span_id=record.span_id,
                step=record.step,
            )


def struct_orphan(ctx: SegmentContext) -> Iterator[Violation]:
    for record in ctx.records:
        parent = record.parent_span_id
        if parent and not record.parent_is_remote and parent not in ctx.by_id and parent not in ctx.known_ids:
            yield Violation(
                c.RULE_STRUCT_ORPHAN,
                f"parent {parent} is neither in the segment nor a remote parent",
                span_id=record.span_id,
                step=record.step or "",
            )


def _required(profile: str, step: str) -> tuple[str, ...]:
    required = c.COMMON_REQUIRED + c.REQUIRED_ATTRIBUTES.get(step, ())
    if profile == c.PROFILE_AUDIT:
        required += c.AUDIT_REQUIRED_ATTRIBUTES.get(step, ())
    return required


def attr_missing(ctx: SegmentContext) -> Iterator[Violation]:
    for record in ctx.records:
        step = record.step
        if step is None:
            continue
        no_content = record.attributes.get(c.CAPTURE_MODE) == c.CAPTURE_NONE
        failed = record.status_code == STATUS_ERROR  # a step that failed has no output to digest
        for attribute in _required(ctx.profile, step):
            if no_content and attribute in c.CONTENT_DIGESTS:
                continue
            if failed and attribute == c.OUTPUT_SHA256:
                continue
            if record.attributes.get(attribute) in (None, ""):
                yield Violation(
                    c.RULE_ATTR_MISSING,
                    f"{step} lacks {attribute}",
                    span_id=record.span_id,
                    step=step,
                    attribute=attribute,
                )


def attr_dropped(ctx: SegmentContext) -> Iterator[Violation]:
    """Counts the exported span carries, and what the processor saw the provider's limits take
    (cut values, dropped event and link attributes). Every span of the segment counts, not only
    those still marked as steps: a limit can drop ``provenance.step`` itself."""
    for record in ctx.records:
        found = [
            f"{count} {what} dropped"
            for what, count in (
                ("attributes", record.dropped_attributes),
                ("events", record.dropped_events),
                ("links", record.dropped_links),
            )
            if count
        ]
        found += [loss for loss in ctx.losses.get(record.span_id, ()) if loss not in found]
        for loss in dict.fromkeys(found):
            yield Violation(
                c.RULE_ATTR_DROPPED,
                f"{record.step or record.name} lost data: {loss}",
                span_id=record.span_id,
                step=record.step or "",
                attribute=loss.partition(":")[0],
            )


def _executed_actions(ctx: SegmentContext) -> Iterator[SpanRecord]:
    """Actions that ran; an action the guard refused is a complete record of a refusal."""
    return (a for a in ctx.steps(c.STEP_ACTION) if a.attributes.get(c.OUTCOME) != c.OUTCOME_REFUSED)


def _linked(ctx: SegmentContext, record: SpanRecord, link_type: str, step: str) -> list[SpanRecord | None]:
    """The targets of a record's links of one type; None for a target that is not a ``step``
    of this trace (the shared predicate treats it as evidence from elsewhere)."""
    out: list[SpanRecord | None] = []
    for link in record.links_of(link_type):
        target = ctx.resolve(link.span_id)
        out.append(target if target is not None and target.step == step else None)
    return out


def link_authz(ctx: SegmentContext) -> Iterator[Violation]:
    policies = [policy_of(r) for r in ctx.by_id.values() if r.step == c.STEP_POLICY_CHECK]
    for record in _executed_actions(ctx):
        linked = _linked(ctx, record, c.LINK_AUTHORIZED_BY, c.STEP_POLICY_CHECK)
        problems = policy_problems(action_of(record), [policy_of(r) if r else None for r in linked], policies)
        for code, message in problems:
            yield Violation(code, message, span_id=record.span_id, step=c.STEP_ACTION)


def _needs_approval(record: SpanRecord) -> bool:
    return record.attributes.get(c.ACTION_PRIVILEGED) is True or "approval" in record.attr_strings(
        c.ACTION_REQUIRE
    )


def in_start_order(records: Iterable[SpanRecord]) -> list[SpanRecord]:
    """Records in the order they started: by their monotonic readings when all were taken in
    one process run (a stepped wall clock does not reorder them), else by wall-clock start."""
    listed = list(records)
    known = [k for r in listed if (k := Reading.of(r.attributes, c.CLOCK_RUN, c.CLOCK_MONOTONIC))]
    if len(known) == len(listed) and len({k.run for k in known}) == 1:
        ranked = sorted(zip(known, listed, strict=True), key=lambda kr: (kr[0].monotonic_ns, kr[1].span_id))
        return [record for _, record in ranked]
    return sorted(listed, key=lambda r: (r.start_ns, r.span_id))


def _approval_findings(ctx: SegmentContext) -> list[Violation]:
    """The approval verdict of every executed action, in the order the actions started, so that
    an approval's single use goes to the first action that used it (as the guard consumes it)."""
    if ctx.approval_findings is not None:
        return ctx.approval_findings
    actions = in_start_order(
        r
        for r in ctx.by_id.values()
        if r.step == c.STEP_ACTION and r.attributes.get(c.OUTCOME) != c.OUTCOME_REFUSED
    )
    in_segment = {r.span_id for r in ctx.records}
    used: dict[str, str] = {}
    findings: list[Violation] = []
    for record in actions:
        linked = _linked(ctx, record, c.LINK_APPROVED_BY, c.STEP_APPROVAL)
        if not (_needs_approval(record) or linked):
            continue
        action = action_of(record)

        def nonce_used(nonce: str, me: str = record.span_id) -> bool:
            return used.get(nonce, me) != me

        problems, chosen = approval_problems(
            action, [approval_of(r) if r else None for r in linked], nonce_used=nonce_used
        )
        if chosen is not None:
            used[chosen.nonce] = record.span_id
        if record.span_id in in_segment:
            attribute = {
                c.RULE_APPROVAL_BINDING: c.APPROVAL_PARAMS_SHA256,
                c.RULE_SOD: c.APPROVAL_APPROVER_ID,
            }
            findings += [
                Violation(
                    code,
                    message,
                    span_id=record.span_id,
                    step=c.STEP_ACTION,
                    attribute=attribute.get(code, ""),
                )
                for code, message in problems
            ]
    ctx.approval_findings = findings
    return findings


def link_approval(ctx: SegmentContext) -> Iterator[Violation]:
    return (v for v in _approval_findings(ctx) if v.code == c.RULE_LINK_APPROVAL)


def separation_of_duties(ctx: SegmentContext) -> Iterator[Violation]:
    return (v for v in _approval_findings(ctx) if v.code == c.RULE_SOD)


def approval_binding(ctx: SegmentContext) -> Iterator[Violation]:
    return (v for v in _approval_findings(ctx) if v.code == c.RULE_APPROVAL_BINDING)


def secret_leak(ctx: SegmentContext) -> Iterator[Violation]:
    for span_id, fields in ctx.leaks.items():
        record = ctx.resolve(span_id)
        for field in fields:
            yield Violation(
                c.RULE_SECRET_LEAK,
                f"a fetched secret value appeared in {field} (removed before export)",
                span_id=span_id,
                step=(record.step or "") if record else "",
                attribute=field,
            )


def unfinished(ctx: SegmentContext) -> Iterator[Violation]:
    if ctx.reason in (c.SEAL_REASON_TIMEOUT, c.SEAL_REASON_SHUTDOWN, c.SEAL_REASON_UNFINISHED):
        for span_id in ctx.open_span_ids:
            yield Violation(
                c.RULE_UNFINISHED,
                f"span was still open when the segment was flushed ({ctx.reason})",
                span_id=span_id,
            )


def verify_missing(ctx: SegmentContext) -> Iterator[Violation]:
    verified = {
        link.span_id
        for record in ctx.by_id.values()
        if record.step == c.STEP_VERIFICATION
        for link in record.links_of(c.LINK_VERIFIES)
    }
    for action in ctx.steps(c.STEP_ACTION):
        if action.attributes.get(c.OUTCOME) == c.OUTCOME_SUCCESS and action.span_id not in verified:
            yield Violation(
                c.RULE_VERIFY_MISSING,
                "successful action has no verification",
                span_id=action.span_id,
                step=c.STEP_ACTION,
            )


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    code: str
    check: Rule
    profiles: frozenset[str]
    meaning: str


_BOTH = frozenset({c.PROFILE_BASELINE, c.PROFILE_AUDIT})
RULES: tuple[RuleSpec, ...] = (
    RuleSpec(c.RULE_STRUCT_ROOT, struct_root, _BOTH, "a locally started trace has no decision root"),
    RuleSpec(c.RULE_STRUCT_ORPHAN, struct_orphan, _BOTH, "a span's parent is missing"),
    RuleSpec(c.RULE_ATTR_MISSING, attr_missing, _BOTH, "a step lacks a required attribute"),
    RuleSpec(c.RULE_ATTR_DROPPED, attr_dropped, _BOTH, "a provenance span dropped data"),
    RuleSpec(c.RULE_LINK_AUTHZ, link_authz, _BOTH, "an action has no allowing policy link"),
    RuleSpec(c.RULE_LINK_APPROVAL, link_approval, _BOTH, "a privileged action has no approval"),
    RuleSpec(c.RULE_SOD, separation_of_duties, _BOTH, "the approver is the actor"),
    RuleSpec(c.RULE_APPROVAL_BINDING, approval_binding, _BOTH, "approval mismatched or expired"),
    RuleSpec(c.RULE_SECRET_LEAK, secret_leak, _BOTH, "a secret value appeared in a span"),
    RuleSpec(c.RULE_UNFINISHED, unfinished, _BOTH, "the decision did not end in time"),
    RuleSpec(
        c.RULE_VERIFY_MISSING,
        verify_missing,
        frozenset({c.PROFILE_AUDIT}),
        "a successful action has no verification",
    ),
)
PROFILES = (c.PROFILE_BASELINE, c.PROFILE_AUDIT)


def evaluate(ctx: SegmentContext, extra: Sequence[Rule] = ()) -> tuple[list[Violation], list[str]]:
    """Run the profile's rules and the user's rules.

    Returns the violations and the names of user rules that raised (a broken user rule is a
    recording error, not a verdict about the evidence).
    """
    violations: list[Violation] = []
    for spec in RULES:
        if ctx.profile in spec.profiles:
            violations.extend(spec.check(ctx))
    failed: list[str] = []
    for rule in extra:
        try:
            found = list(rule(ctx))
            if not all(isinstance(v, Violation) for v in found):
                raise TypeError("a rule must yield provtrace.Violation objects")
        except Exception:  # noqa: BLE001 - user code must not stop the check
            failed.append(getattr(rule, "__name__", repr(rule)))
            continue
        violations.extend(found)
    return violations, failed

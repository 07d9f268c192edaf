"""The completeness contract: one table of rules, each with a stable code, and the profiles.

A rule is a plain callable taking a :class:`SegmentContext` and yielding :class:`Violation` s.
Users add their own through ``configure(rules=[...])``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from provtrace import conventions as c
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

    def __post_init__(self) -> None:
        self.by_id: dict[str, SpanRecord] = {**self.earlier, **{r.span_id: r for r in self.records}}

    def steps(self, step: str) -> Iterator[SpanRecord]:
        return (r for r in self.records if r.step == step)

    def resolve(self, span_id: str) -> SpanRecord | None:
        return self.by_id.get(span_id)

    def linked(self, record: SpanRecord, link_type: str, step: str) -> list[SpanRecord]:
        found = (self.resolve(link.span_id) for link in record.links_of(link_type))
        return [r for r in found if r is not None and r.step == step]


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
        if step == c.STEP_ACTION:
            required += (c.NHI_ID,)
        elif step == c.STEP_POLICY_CHECK:
            required += (c.POLICY_VERSION,)
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
    for record in ctx.records:
        if record.step is None:
            continue
        for what, count in (
            ("attributes", record.dropped_attributes),
            ("events", record.dropped_events),
            ("links", record.dropped_links),
        ):
            if count:
                yield Violation(
                    c.RULE_ATTR_DROPPED,
                    f"{record.step} dropped {count} {what}",
                    span_id=record.span_id,
                    step=record.step,
                    attribute=what,
                )


def _executed_actions(ctx: SegmentContext) -> Iterator[SpanRecord]:
    """Actions that ran; an action the guard refused is a complete record of a refusal."""
    return (a for a in ctx.steps(c.STEP_ACTION) if a.attributes.get(c.OUTCOME) != c.OUTCOME_REFUSED)


def link_authz(ctx: SegmentContext) -> Iterator[Violation]:
    for action in _executed_actions(ctx):
        policies = ctx.linked(action, c.LINK_AUTHORIZED_BY, c.STEP_POLICY_CHECK)
        if not any(p.attributes.get(c.POLICY_DECISION) == c.POLICY_ALLOW for p in policies):
            yield Violation(
                c.RULE_LINK_AUTHZ,
                "action has no authorized_by link to an allowing policy check",
                span_id=action.span_id,
                step=c.STEP_ACTION,
            )


def _approvals(ctx: SegmentContext, action: SpanRecord) -> list[SpanRecord]:
    return [
        a
        for a in ctx.linked(action, c.LINK_APPROVED_BY, c.STEP_APPROVAL)
        if a.attributes.get(c.APPROVAL_DECISION) == c.APPROVAL_APPROVED
    ]


def link_approval(ctx: SegmentContext) -> Iterator[Violation]:
    for action in _executed_actions(ctx):
        if action.attributes.get(c.ACTION_PRIVILEGED) is True and not _approvals(ctx, action):
            yield Violation(
                c.RULE_LINK_APPROVAL,
                "privileged action has no approved_by link to an approved approval",
                span_id=action.span_id,
                step=c.STEP_ACTION,
            )


def separation_of_duties(ctx: SegmentContext) -> Iterator[Violation]:
    for action in _executed_actions(ctx):
        actor = action.attributes.get(c.ACTOR_ID)
        for approval in _approvals(ctx, action):
            if actor and approval.attributes.get(c.APPROVAL_APPROVER_ID) == actor:
                yield Violation(
                    c.RULE_SOD,
                    "the approver is the actor of the action it approved",
                    span_id=action.span_id,
                    step=c.STEP_ACTION,
                    attribute=c.APPROVAL_APPROVER_ID,
                )


def parse_expiry(value: object) -> int | None:
    """``provenance.approval.expires_at`` (RFC 3339, UTC) as Unix nanoseconds."""
    if not isinstance(value, str):
        return None
    try:
        moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return int(moment.timestamp() * 1_000_000) * 1000


def approval_binding(ctx: SegmentContext) -> Iterator[Violation]:
    nonce_users: dict[str, str] = {}
    for action in _executed_actions(ctx):
        params = action.attributes.get(c.ACTION_PARAMS_SHA256)
        for approval in _approvals(ctx, action):
            if approval.attributes.get(c.APPROVAL_PARAMS_SHA256) != params:
                yield Violation(
                    c.RULE_APPROVAL_BINDING,
                    "approved parameters differ from the action's parameters",
                    span_id=action.span_id,
                    step=c.STEP_ACTION,
                    attribute=c.APPROVAL_PARAMS_SHA256,
                )
            expiry = parse_expiry(approval.attributes.get(c.APPROVAL_EXPIRES_AT))
            if expiry is None or action.start_ns > expiry:
                yield Violation(
                    c.RULE_APPROVAL_BINDING,
                    "approval had expired (or has no valid expiry) when the action started",
                    span_id=action.span_id,
                    step=c.STEP_ACTION,
                    attribute=c.APPROVAL_EXPIRES_AT,
                )
            nonce = str(approval.attributes.get(c.APPROVAL_NONCE, ""))
            if nonce and nonce_users.setdefault(nonce, action.span_id) != action.span_id:
                yield Violation(
                    c.RULE_APPROVAL_BINDING,
                    "approval nonce was already used by another action",
                    span_id=action.span_id,
                    step=c.STEP_ACTION,
                    attribute=c.APPROVAL_NONCE,
                )


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
    if ctx.reason in (c.SEAL_REASON_TIMEOUT, c.SEAL_REASON_SHUTDOWN):
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

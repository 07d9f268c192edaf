"""When the evidence authorises an action: the one predicate the guard and the rules share.

The guard asks it before an action runs, from the facts the decision gathered in this process;
the completeness rules ask it after the fact, from the exported spans. Both build the same small
evidence records and get the same answer, so a guard that lets an action run and a rule that
later calls the same action unauthorised cannot happen.

Order and age are judged by elapsed time: by the monotonic readings of the two steps when both
were taken in one process run (a wall clock stepped back or forward between them changes
nothing), else by their wall-clock start times.

- A policy check authorises an action when it is linked to it, belongs to the same decision,
  started no later than the action, allowed, is still its policy's latest verdict at that point
  (an allow followed by a deny of the same policy no longer authorises), and *names* the action:
  its checked input has the action's parameter digest, or it lists the action's type.
- An approval approves an action when it is linked to it, belongs to the same decision, was
  given no later than the action, is approved, is bound to exactly the action's parameters,
  had not expired when the action started, was not used by another action, and its approver is
  not the action's actor (compared in canonical form, see :func:`canonical_identity`). An action
  with no actor cannot pass separation of duties by omission.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import unicodedata
from collections.abc import Callable, Iterable, Sequence

from provtrace import conventions as c
from provtrace.clock import Reading
from provtrace.model import SpanRecord

Problem = tuple[str, str]  # (rule code, what is wrong)


def canonical_identity(identity: str | None) -> str:
    """The form in which identities are compared: Unicode NFKC, case-folded, with format
    characters (zero-width spaces, direction marks) removed and whitespace collapsed and trimmed.
    ``SecOps-Agent``, ``secops-agent `` and its fullwidth spelling are one identity."""
    if not identity:
        return ""
    text = unicodedata.normalize("NFKC", identity)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(text.casefold().split())


@dataclasses.dataclass(frozen=True)
class PolicyEvidence:
    span_id: str
    decision_id: str
    start_ns: int
    policy_id: str
    verdict: str
    input_sha256: str = ""
    actions: tuple[str, ...] = ()
    clock: Reading | None = None


@dataclasses.dataclass(frozen=True)
class ApprovalEvidence:
    span_id: str
    decision_id: str
    start_ns: int
    approver: str
    verdict: str
    params_sha256: str = ""
    expires_at_ns: int = 0
    nonce: str = ""
    clock: Reading | None = None


@dataclasses.dataclass(frozen=True)
class ActionEvidence:
    span_id: str
    decision_id: str
    start_ns: int
    action_type: str
    actor: str
    params_sha256: str = ""
    clock: Reading | None = None


Timed = PolicyEvidence | ApprovalEvidence | ActionEvidence


def elapsed_ns(earlier: Timed, later: Timed) -> int:
    """Nanoseconds from one step's start to another's: by the monotonic clock when both were
    read in one process run, else by their wall-clock starts."""
    mono = earlier.clock.elapsed_ns(later.clock) if earlier.clock is not None else None
    return mono if mono is not None else later.start_ns - earlier.start_ns


def lifetime_ns(approval: ApprovalEvidence) -> int:
    """How long an approval is valid: from its start (in whole microseconds, as exported) to its
    recorded expiry."""
    return approval.expires_at_ns - (approval.start_ns - approval.start_ns % 1000)


def remaining_s(approval: ApprovalEvidence, action: ActionEvidence) -> float:
    """Seconds the approval still had when the action started."""
    return (lifetime_ns(approval) - elapsed_ns(approval, action)) / 1e9


def names(policy: PolicyEvidence, action: ActionEvidence) -> bool:
    """Whether the policy check was about this action: by its type, or by its exact parameters."""
    if action.action_type and action.action_type in policy.actions:
        return True
    return bool(action.params_sha256) and policy.input_sha256 == action.params_sha256


def _superseded(policy: PolicyEvidence, action: ActionEvidence, others: Iterable[PolicyEvidence]) -> bool:
    """A later check of the same policy, no later than the action, that did not allow. Checks
    that started at the same instant are ordered by nothing, so any one of them denying counts."""
    return any(
        other.policy_id == policy.policy_id
        and other.decision_id == policy.decision_id
        and other.span_id != policy.span_id
        and elapsed_ns(policy, other) >= 0
        and elapsed_ns(other, action) >= 0
        and other.verdict != c.POLICY_ALLOW
        for other in others
    )


def policy_problems(
    action: ActionEvidence,
    linked: Sequence[PolicyEvidence | None],
    decision_policies: Iterable[PolicyEvidence],
) -> list[Problem]:
    """Empty when one of the linked policy checks authorises the action, else why none does.
    ``decision_policies`` are all policy checks known in the action's decision."""
    if not linked:
        return [(c.RULE_LINK_AUTHZ, "no policy check is linked to the action")]
    others = list(decision_policies)
    reasons: list[str] = []
    for policy in linked:
        if policy is None:
            reasons.append("the linked policy check is not part of this decision")
        elif not action.decision_id or policy.decision_id != action.decision_id:
            reasons.append(f"policy check {policy.policy_id} belongs to another decision")
        elif elapsed_ns(policy, action) < 0:
            reasons.append(f"policy check {policy.policy_id} started after the action")
        elif policy.verdict != c.POLICY_ALLOW:
            verdict = f"denied ({policy.verdict})" if policy.verdict else "gave no verdict"
            reasons.append(f"policy {policy.policy_id} {verdict}")
        elif _superseded(policy, action, others):
            reasons.append(f"a later check of policy {policy.policy_id} did not allow")
        elif not names(policy, action):
            reasons.append(
                f"policy check {policy.policy_id} was about something else (neither the action type "
                "nor these parameters)"
            )
        else:
            return []
    return [(c.RULE_LINK_AUTHZ, "; ".join(dict.fromkeys(reasons)))]


def approval_problems(
    action: ActionEvidence,
    linked: Sequence[ApprovalEvidence | None],
    *,
    nonce_used: Callable[[str], bool],
) -> tuple[list[Problem], ApprovalEvidence | None]:
    """Empty problems and the approval that approves the action, or why none does.
    ``nonce_used`` says whether another action already used an approval's nonce."""
    if not action.params_sha256:
        return [
            (c.RULE_APPROVAL_BINDING, "the action has no exact parameters for an approval to bind to")
        ], None
    approved = [a for a in linked if a is not None and a.verdict == c.APPROVAL_APPROVED]
    if not approved:
        return [(c.RULE_LINK_APPROVAL, "no approved approval is linked to the action")], None
    actor = canonical_identity(action.actor)
    problems: list[Problem] = []
    for approval in approved:
        if not action.decision_id or approval.decision_id != action.decision_id:
            problems.append((c.RULE_LINK_APPROVAL, "the approval belongs to another decision"))
        elif elapsed_ns(approval, action) < 0:
            problems.append((c.RULE_LINK_APPROVAL, "the approval was given after the action started"))
        elif approval.params_sha256 != action.params_sha256:
            problems.append((c.RULE_APPROVAL_BINDING, "the approval was given for different parameters"))
        elif approval.expires_at_ns <= 0 or remaining_s(approval, action) < 0:
            problems.append((c.RULE_APPROVAL_BINDING, "the approval had expired (or has no expiry)"))
        elif not approval.nonce or nonce_used(approval.nonce):
            problems.append((c.RULE_APPROVAL_BINDING, "the approval was already used by another action"))
        elif not actor:
            problems.append((c.RULE_SOD, "the action has no actor, so separation of duties cannot hold"))
        elif canonical_identity(approval.approver) in ("", actor):
            problems.append((c.RULE_SOD, "the approver is the actor of this action (or unnamed)"))
        else:
            return [], approval
    return list(dict.fromkeys(problems)), None


# --- evidence from exported spans (the rules' side) ------------------------------------------


def parse_expiry(value: object) -> int:
    """``provenance.approval.expires_at`` (RFC 3339, UTC) as Unix nanoseconds; 0 if invalid."""
    if not isinstance(value, str):
        return 0
    try:
        moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return int(moment.timestamp() * 1_000_000) * 1000


def _text(record: SpanRecord, key: str) -> str:
    value = record.attributes.get(key)
    return value if isinstance(value, str) else ""


def policy_of(record: SpanRecord) -> PolicyEvidence:
    return PolicyEvidence(
        span_id=record.span_id,
        decision_id=_text(record, c.DECISION_ID),
        start_ns=record.start_ns,
        policy_id=_text(record, c.POLICY_ID),
        verdict=_text(record, c.POLICY_DECISION),
        input_sha256=_text(record, c.INPUT_SHA256),
        actions=record.attr_strings(c.POLICY_ACTIONS),
        clock=Reading.of(record.attributes, c.CLOCK_RUN, c.CLOCK_MONOTONIC),
    )


def approval_of(record: SpanRecord) -> ApprovalEvidence:
    return ApprovalEvidence(
        span_id=record.span_id,
        decision_id=_text(record, c.DECISION_ID),
        start_ns=record.start_ns,
        approver=_text(record, c.APPROVAL_APPROVER_ID),
        verdict=_text(record, c.APPROVAL_DECISION),
        params_sha256=_text(record, c.APPROVAL_PARAMS_SHA256),
        expires_at_ns=parse_expiry(record.attributes.get(c.APPROVAL_EXPIRES_AT)),
        nonce=_text(record, c.APPROVAL_NONCE),
        clock=Reading.of(record.attributes, c.CLOCK_RUN, c.CLOCK_MONOTONIC),
    )


def action_of(record: SpanRecord) -> ActionEvidence:
    return ActionEvidence(
        span_id=record.span_id,
        decision_id=_text(record, c.DECISION_ID),
        start_ns=record.start_ns,
        action_type=_text(record, c.ACTION_TYPE),
        actor=_text(record, c.ACTOR_ID),
        params_sha256=_text(record, c.ACTION_PARAMS_SHA256),
        clock=Reading.of(record.attributes, c.CLOCK_RUN, c.CLOCK_MONOTONIC),
    )

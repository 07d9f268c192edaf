"""``action`` and ``verification``: exactly what changed, under which evidence, and the check after.

``action(..., require=("policy", "approval"))`` is the guard: before the wrapped code runs it
refuses (raises :class:`~provtrace.ProvenanceViolation`) unless the decision holds an allowing
policy check and an approval bound to these exact parameters, unexpired, unused, from someone other
than the actor, and unless the pipeline can persist the evidence. The refusal itself is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from opentelemetry.trace import Link

from provtrace import conventions as c
from provtrace import runtime
from provtrace.authorization import (
    ActionEvidence,
    ApprovalEvidence,
    PolicyEvidence,
    Problem,
    approval_problems,
    names,
    policy_problems,
    remaining_s,
)
from provtrace.content import Captured, capture
from provtrace.errors import ProvenanceViolation
from provtrace.steps.base import (
    Refs,
    StepHandle,
    StepSpec,
    _link,
    bind_params,
    context_of,
    fact_of,
    refs_to_list,
)
from provtrace.steps.scope import FACTS, DecisionState, Proposal, StepFact, current_decision

GUARD_REQUIREMENTS = ("policy", "approval")
CODE_PIPELINE = "PIPELINE"
_NO_PARAMS: Any = object()


class Action(StepHandle):
    step = c.STEP_ACTION

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        spec = self.spec
        assert isinstance(spec, ActionSpec)
        self.action_type = spec.action_type
        self.params_sha256 = ""
        self.outcome = ""
        self.refused: ProvenanceViolation | None = None

    def record_change(self, before: Any = None, after: Any = None) -> None:
        """Record exactly what changed: digests of the state before and after, content per mode."""
        self._content(before, c.CHANGE_BEFORE_CONTENT, c.CHANGE_BEFORE_SHA256)
        self._content(after, c.CHANGE_AFTER_CONTENT, c.CHANGE_AFTER_SHA256)

    def set_outcome(self, outcome: str) -> None:
        """Override the outcome (default: success, or failure when the body raised)."""
        self.outcome = outcome

    def _on_finish(self, error: BaseException | None) -> None:
        if self.refused is not None and error is self.refused:
            outcome = c.OUTCOME_REFUSED
        else:
            outcome = self.outcome or (c.OUTCOME_FAILURE if error is not None else c.OUTCOME_SUCCESS)
        self.outcome = outcome
        self.span.set_attribute(c.OUTCOME, outcome)

    def fact(self) -> StepFact:
        return StepFact(
            step=self.step, context=self.context, verdict=self.outcome, action_type=self.action_type
        )

    def evidence(self) -> ActionEvidence:
        """The action as the authorization predicate sees it (its actor as recorded)."""
        actor = self.spec.actor or (self.decision.actor if self.decision else None)
        return ActionEvidence(
            span_id=self.span_id,
            decision_id=self.decision_id,
            start_ns=self.start_ns,
            action_type=self.action_type,
            actor=actor or "",
            params_sha256=self.params_sha256,
            clock=self.clock,
        )


class ActionSpec(StepSpec[Action]):
    """A change to a system: ``with provtrace.action("firewall.rule.open", target=..., params=req,
    privileged=True, require=("policy", "approval")) as act: act.record_change(before, after)``."""

    handle_type = Action
    step = c.STEP_ACTION
    timed = True

    def __init__(
        self,
        action_type: str,
        target: str,
        *,
        privileged: bool = False,
        params: Any = _NO_PARAMS,
        authorized_by: Refs = None,
        approved_by: Refs = None,
        used_secrets: Refs = None,
        require: Sequence[str] = (),
        actor: str | None = None,
        nhi: str | None = None,
        triggered_by: Refs = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(actor=actor, nhi=nhi, triggered_by=triggered_by, attributes=attributes)
        unknown = sorted(set(require) - set(GUARD_REQUIREMENTS))
        if unknown:
            raise ValueError(
                f"action require= accepts {', '.join(GUARD_REQUIREMENTS)}; unknown: {', '.join(unknown)}"
            )
        self.action_type = action_type
        self.target = target
        self.privileged = bool(privileged)
        self.params = params
        self.authorized_by = authorized_by
        self.approved_by = approved_by
        self.used_secrets = used_secrets
        self.require = tuple(dict.fromkeys(require))
        self._params: Captured | None = capture(params) if params is not _NO_PARAMS else None

    def span_name(self) -> str:
        return f"action {self.action_type}"

    def step_attributes(self, decision: DecisionState | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            c.ACTION_TYPE: self.action_type,
            c.ACTION_TARGET: self.target,
            c.ACTION_PRIVILEGED: self.privileged,
        }
        if self.require:
            attributes[c.ACTION_REQUIRE] = self.require
        return attributes

    # --- links ------------------------------------------------------------------------------

    def _params_digest(self) -> str:
        params = self._params
        return params.digest if params is not None and params.exact else ""

    def _policy_facts(self, decision: DecisionState | None) -> list[tuple[Any, StepFact | None]]:
        """The explicit ``authorized_by``, else the latest allowing check that names this action
        (else the latest allowing one, so that the record shows what was relied on)."""
        if self.authorized_by is not None:
            return [(context_of(r), fact_of(r)) for r in refs_to_list(self.authorized_by)]
        if decision is None:
            return []
        allowing = [f for f in decision.all(c.STEP_POLICY_CHECK) if f.verdict == c.POLICY_ALLOW]
        probe = ActionEvidence("", decision.decision_id, 0, self.action_type, "", self._params_digest())
        naming = [f for f in allowing if isinstance(f.evidence, PolicyEvidence) and names(f.evidence, probe)]
        chosen = (naming or allowing)[-1:]
        return [(fact.context, fact) for fact in chosen]

    def _approval_facts(
        self, decision: DecisionState | None, params: str
    ) -> list[tuple[Any, StepFact | None]]:
        if self.approved_by is not None:
            return [(context_of(r), fact_of(r)) for r in refs_to_list(self.approved_by)]
        if decision is None:
            return []
        approvals = decision.all(c.STEP_APPROVAL)
        matching = [
            a
            for a in approvals
            if isinstance(a.evidence, ApprovalEvidence) and a.evidence.params_sha256 == params
        ]
        chosen = (matching or approvals)[-1:] if approvals else []
        return [(fact.context, fact) for fact in chosen]

    def _secret_contexts(self, decision: DecisionState | None) -> list[Any]:
        if self.used_secrets is not None:
            return [context_of(r) for r in refs_to_list(self.used_secrets)]
        return [fact.context for fact in decision.all(c.STEP_SECRET_FETCH)] if decision else []

    def proposal(self, decision: DecisionState) -> Proposal | None:
        """An action whose parameters equal the arguments of a tool call the model proposed."""
        digest = self._params_digest()
        return decision.proposal(arguments_sha256=digest) if digest else None

    def inferred_links(self, decision: DecisionState | None) -> list[Link]:
        links = [_link(ctx, c.LINK_AUTHORIZED_BY) for ctx, _ in self._policy_facts(decision)]
        links += [
            _link(ctx, c.LINK_APPROVED_BY) for ctx, _ in self._approval_facts(decision, self._params_digest())
        ]
        links += [_link(ctx, c.LINK_USED_SECRET) for ctx in self._secret_contexts(decision)]
        return links + self._triggered_by_links(decision)

    # --- lifecycle --------------------------------------------------------------------------

    def _started(self, handle: Action) -> None:
        if self._params is not None:
            handle.params_sha256 = bind_params(handle, self._params, c.ACTION_PARAMS_SHA256)
            handle._store(self._params.jsonable, c.ACTION_PARAMS_CONTENT)

    def record_call_input(self, handle: Action, arguments: dict[str, Any]) -> None:
        if self._params is None:
            captured = capture(arguments)
            handle.params_sha256 = bind_params(handle, captured, c.ACTION_PARAMS_SHA256)
            handle._store(captured.jsonable, c.ACTION_PARAMS_CONTENT)
            if handle.decision is not None and self.triggered_by is None and handle.params_sha256:
                handle.link_proposal(handle.decision.proposal(arguments_sha256=handle.params_sha256))

    def before_run(self, handle: Action) -> None:
        if not self.require:
            return
        problems, approval = self._guard_problems(handle)
        if (
            not problems
            and approval is not None
            and not FACTS.consume_nonce(approval.nonce, remaining_s(approval, handle.evidence()))
        ):
            # Checked and consumed in one step: two actions racing on one approval, one wins.
            problems = [(c.RULE_APPROVAL_BINDING, "the approval was already used by another action")]
        if problems:
            self._refuse(handle, problems)

    def _refuse(self, handle: Action, problems: list[Problem]) -> None:
        codes = tuple(dict.fromkeys(code for code, _ in problems))
        message = f"refused {self.action_type} on {self.target}: " + "; ".join(m for _, m in problems)
        refusal = ProvenanceViolation(message, codes)
        handle.refused = refusal
        with handle.recording("refusal"):
            handle.span.set_attribute(c.GUARD_VIOLATIONS, codes)
            active = runtime.current()
            if active is not None:
                active.count("guard_refusals")
        raise refusal

    def _guard_problems(self, handle: Action) -> tuple[list[Problem], ApprovalEvidence | None]:
        """What is missing, and the approval that would be consumed if nothing is. The evidence
        is judged by the predicate the completeness rules use (provtrace.authorization)."""
        problems: list[Problem] = []
        approval: ApprovalEvidence | None = None
        decision = handle.decision
        action = handle.evidence()
        if "policy" in self.require:
            linked = [_evidence(f, PolicyEvidence) for _, f in self._policy_facts(decision)]
            known = [f.evidence for f in decision.all(c.STEP_POLICY_CHECK)] if decision else []
            problems += policy_problems(action, linked, [e for e in known if isinstance(e, PolicyEvidence)])
        if "approval" in self.require:
            linked_approvals = [
                _evidence(f, ApprovalEvidence)
                for _, f in self._approval_facts(decision, action.params_sha256)
            ]
            found, approval = approval_problems(action, linked_approvals, nonce_used=FACTS.nonce_used)
            problems += found
        problems += _pipeline_problems(handle)
        return problems, approval


E = TypeVar("E", PolicyEvidence, ApprovalEvidence)


def _evidence(fact: StepFact | None, kind: type[E]) -> E | None:
    evidence = fact.evidence if fact is not None else None
    return evidence if isinstance(evidence, kind) else None


def _pipeline_problems(handle: Action) -> list[Problem]:
    """No action without evidence: provtrace must be configured, able to persist (the spool is
    probed, not only its last write), and recording this very action's span."""
    active = runtime.current()
    if active is None:
        return [(CODE_PIPELINE, "provtrace is not configured, so evidence cannot be persisted")]
    health = active.health()
    if not health.ok:
        return [(CODE_PIPELINE, "evidence cannot be persisted: " + "; ".join(health.problems))]
    if not active.seals(handle.context.span_id):
        return [
            (
                CODE_PIPELINE,
                "this action's span is not recorded by provtrace (the tracer provider is disabled, "
                "e.g. OTEL_SDK_DISABLED=true, or samples it out)",
            )
        ]
    return []


action = ActionSpec


class Verification(StepHandle):
    step = c.STEP_VERIFICATION

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.result = ""

    def passed(self, detail: str | None = None) -> None:
        self._decide(c.VERIFICATION_PASS, detail)

    def failed(self, detail: str | None = None) -> None:
        self._decide(c.VERIFICATION_FAIL, detail)

    def _decide(self, result: str, detail: str | None) -> None:
        self.result = result
        with self.recording("result"):
            self.span.set_attribute(c.VERIFICATION_RESULT, result)
            self._store_text(c.VERIFICATION_DETAIL, detail)

    def _on_finish(self, error: BaseException | None) -> None:
        if error is not None and not self.result:
            self._decide(c.VERIFICATION_FAIL, None)


class VerificationSpec(StepSpec[Verification]):
    """The check after an action: ``with provtrace.verification(of=act, method="port-probe") as v:``
    then ``v.passed(detail=...)`` or ``v.failed(detail=...)``."""

    handle_type = Verification
    step = c.STEP_VERIFICATION

    def __init__(
        self,
        of: Refs = None,
        *,
        method: str | None = None,
        actor: str | None = None,
        nhi: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(actor=actor, nhi=nhi, attributes=attributes)
        self.of = of
        self.method = method

    def _verified(self, decision: DecisionState | None) -> list[tuple[Any, str]]:
        if self.of is not None:
            refs = refs_to_list(self.of)
            out = []
            for ref in refs:
                fact = fact_of(ref)
                kind = ref.action_type if isinstance(ref, Action) else (fact.action_type if fact else "")
                out.append((context_of(ref), kind))
            return out
        fact = decision.latest(c.STEP_ACTION) if decision else None
        return [(fact.context, fact.action_type)] if fact else []

    def span_name(self) -> str:
        verified = self._verified(current_decision())
        kind = verified[0][1] if verified and verified[0][1] else "action"
        return f"verification {kind}"

    def step_attributes(self, decision: DecisionState | None) -> dict[str, Any]:
        return {c.VERIFICATION_METHOD: self.method} if self.method else {}

    def inferred_links(self, decision: DecisionState | None) -> list[Link]:
        return [_link(ctx, c.LINK_VERIFIES) for ctx, _ in self._verified(decision)]

    def record_call_result(self, handle: Verification, result: Any) -> None:
        handle.record_output(result)
        if not handle.result:
            handle._decide(c.VERIFICATION_PASS if result else c.VERIFICATION_FAIL, None)


verification = VerificationSpec

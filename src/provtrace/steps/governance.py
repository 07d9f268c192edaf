"""``policy_check`` and ``approval``: which rule authorised an action and which human approved it.

An approval is bound to the exact action parameters (RFC 8785 digest), carries a single-use nonce
and an expiry, so the guard and the completeness rules can tell whether it approved *this* action.
"""

from __future__ import annotations

import datetime as _dt
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from provtrace import conventions as c
from provtrace.authorization import ApprovalEvidence, PolicyEvidence
from provtrace.clock import now_ns
from provtrace.content import capture
from provtrace.steps.base import Refs, StepHandle, StepSpec, bind_params
from provtrace.steps.scope import DecisionState, StepFact

DEFAULT_APPROVAL_TTL_S = 900.0
_NO_INPUT: Any = object()


def _verdict_of(result: Any, yes: str, no: str) -> str | None:
    """How a decorated policy/approval function's return value reads as a verdict."""
    if result is True or result == yes:
        return yes
    if result is False or result is None or result == no:
        return no
    return None


class PolicyCheck(StepHandle):
    step = c.STEP_POLICY_CHECK

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        spec = self.spec
        assert isinstance(spec, PolicyCheckSpec)
        self.policy_id = spec.policy_id
        self.actions = spec.actions
        self.verdict = ""
        self.input_sha256 = ""

    def record_input(self, value: Any) -> str:
        self.input_sha256 = super().record_input(value)
        return self.input_sha256

    def allow(self, reason: str | None = None) -> None:
        self._decide(c.POLICY_ALLOW, reason)

    def deny(self, reason: str | None = None) -> None:
        self._decide(c.POLICY_DENY, reason)

    @property
    def allowed(self) -> bool:
        return self.verdict == c.POLICY_ALLOW

    def _decide(self, verdict: str, reason: str | None) -> None:
        self.verdict = verdict
        with self.recording("verdict"):
            self.span.set_attribute(c.POLICY_DECISION, verdict)
            self._store_text(c.POLICY_REASON, reason)
            self._remember()

    def fact(self) -> StepFact:
        evidence = PolicyEvidence(
            span_id=self.span_id,
            decision_id=self.decision_id,
            start_ns=self.start_ns,
            policy_id=self.policy_id,
            verdict=self.verdict,
            input_sha256=self.input_sha256,
            actions=self.actions,
            clock=self.clock,
        )
        return StepFact(step=self.step, context=self.context, verdict=self.verdict, evidence=evidence)


class PolicyCheckSpec(StepSpec[PolicyCheck]):
    """A policy decision: ``with provtrace.policy_check("fw-change", version="3", input=req) as p:``
    then ``p.allow(reason=...)`` or ``p.deny(reason=...)``. Decorated, a True/"allow" return
    value allows and False/None/"deny" denies.

    An allow authorises only the actions the check names: those whose parameters equal its
    ``input`` (same digest), or whose type is in ``actions=``; and only until a later check of
    the same policy in the decision does not allow."""

    handle_type = PolicyCheck
    step = c.STEP_POLICY_CHECK
    timed = True

    def __init__(
        self,
        policy_id: str,
        *,
        version: str | None = None,
        engine: str | None = None,
        input: Any = _NO_INPUT,
        actions: str | Sequence[str] = (),
        actor: str | None = None,
        nhi: str | None = None,
        triggered_by: Refs = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(actor=actor, nhi=nhi, triggered_by=triggered_by, attributes=attributes)
        self.policy_id = policy_id
        self.version = version
        self.engine = engine
        self.input = input
        self.actions = (actions,) if isinstance(actions, str) else tuple(actions)

    def span_name(self) -> str:
        return f"policy_check {self.policy_id}"

    def step_attributes(self, decision: DecisionState | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {c.POLICY_ID: self.policy_id}
        if self.version is not None:
            attributes[c.POLICY_VERSION] = str(self.version)
        if self.engine:
            attributes[c.POLICY_ENGINE] = self.engine
        if self.actions:
            attributes[c.POLICY_ACTIONS] = self.actions
        return attributes

    def _started(self, handle: PolicyCheck) -> None:
        if self.input is not _NO_INPUT:
            handle.record_input(self.input)

    def record_call_input(self, handle: PolicyCheck, arguments: dict[str, Any]) -> None:
        if self.input is _NO_INPUT:
            handle.record_input(arguments)

    def record_call_result(self, handle: PolicyCheck, result: Any) -> None:
        handle.record_output(result)
        verdict = _verdict_of(result, c.POLICY_ALLOW, c.POLICY_DENY)
        if verdict and not handle.verdict:
            handle._decide(verdict, None)


policy_check = PolicyCheckSpec


class Approval(StepHandle):
    step = c.STEP_APPROVAL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        spec = self.spec
        assert isinstance(spec, ApprovalSpec)
        self.verdict = ""
        self.approver = spec.approver
        self.params_sha256 = ""
        self.nonce = spec.nonce or secrets.token_hex(16)
        self.expires_at_ns = 0

    def approve(self, reason: str | None = None) -> None:
        self._decide(c.APPROVAL_APPROVED, reason)

    def reject(self, reason: str | None = None) -> None:
        self._decide(c.APPROVAL_REJECTED, reason)

    @property
    def approved(self) -> bool:
        return self.verdict == c.APPROVAL_APPROVED

    def _decide(self, verdict: str, reason: str | None) -> None:
        self.verdict = verdict
        with self.recording("verdict"):
            self.span.set_attribute(c.APPROVAL_DECISION, verdict)
            self._store_text(c.APPROVAL_REASON, reason)
            self._remember()

    def fact(self) -> StepFact:
        evidence = ApprovalEvidence(
            span_id=self.span_id,
            decision_id=self.decision_id,
            start_ns=self.start_ns,
            approver=self.approver,
            verdict=self.verdict,
            params_sha256=self.params_sha256,
            expires_at_ns=self.expires_at_ns,
            nonce=self.nonce,
            clock=self.clock,
        )
        return StepFact(step=self.step, context=self.context, verdict=self.verdict, evidence=evidence)


def _rfc3339(ns: int) -> str:
    moment = _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class ApprovalSpec(StepSpec[Approval]):
    """A human approval bound to the exact action parameters:
    ``with provtrace.approval(approver="alice@example.com", for_action=req) as a: a.approve()``."""

    handle_type = Approval
    step = c.STEP_APPROVAL
    timed = True

    def __init__(
        self,
        approver: str,
        *,
        method: str | None = None,
        ticket: str | None = None,
        for_action: Any = _NO_INPUT,
        expires_in: float | _dt.timedelta = DEFAULT_APPROVAL_TTL_S,
        nonce: str | None = None,
        actor: str | None = None,
        nhi: str | None = None,
        triggered_by: Refs = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(actor=actor, nhi=nhi, triggered_by=triggered_by, attributes=attributes)
        self.approver = approver
        self.method = method
        self.ticket = ticket
        self.for_action = for_action
        seconds = expires_in.total_seconds() if isinstance(expires_in, _dt.timedelta) else float(expires_in)
        self.ttl_ns = int(seconds * 1_000_000) * 1000
        self.nonce = nonce

    def span_name(self) -> str:
        return f"approval {self.ticket or self.approver}"

    def step_attributes(self, decision: DecisionState | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {c.APPROVAL_APPROVER_ID: self.approver}
        if self.method:
            attributes[c.APPROVAL_METHOD] = self.method
        if self.ticket:
            attributes[c.APPROVAL_TICKET] = self.ticket
        return attributes

    def _started(self, handle: Approval) -> None:
        handle.span.set_attribute(c.APPROVAL_NONCE, handle.nonce)
        expires = (getattr(handle.span, "start_time", None) or now_ns()) + self.ttl_ns
        # Whole seconds, as in the attribute, so the guard and the rules agree on the instant.
        handle.expires_at_ns = expires - expires % 1_000_000_000
        handle.span.set_attribute(c.APPROVAL_EXPIRES_AT, _rfc3339(handle.expires_at_ns))
        if self.for_action is not _NO_INPUT:
            self._bind(handle, self.for_action)

    def _bind(self, handle: Approval, params: Any) -> None:
        """Commit to the parameters the approver saw: their exact digest, and the content per
        mode. Parameters that cannot be identified exactly bind nothing (see ``bind_params``)."""
        captured = capture(params)
        handle.params_sha256 = bind_params(handle, captured, c.APPROVAL_PARAMS_SHA256)
        handle._store(captured.jsonable, c.INPUT_CONTENT)

    def record_call_input(self, handle: Approval, arguments: dict[str, Any]) -> None:
        if self.for_action is _NO_INPUT:
            self._bind(handle, arguments)

    def record_call_result(self, handle: Approval, result: Any) -> None:
        verdict = _verdict_of(result, c.APPROVAL_APPROVED, c.APPROVAL_REJECTED)
        if verdict and not handle.verdict:
            handle._decide(verdict, None)


approval = ApprovalSpec

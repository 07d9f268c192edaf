"""``decision``: the root of a decision chain, and the scope the other steps infer links from."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from provtrace import conventions as c
from provtrace.steps.base import StepHandle, StepSpec
from provtrace.steps.scope import DecisionState, enter_decision, exit_decision

F = TypeVar("F", bound=Callable[..., Any])


class Decision(StepHandle):
    step = c.STEP_DECISION

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        spec = self.spec
        assert isinstance(spec, DecisionSpec)
        self.id = spec.new_decision_id()
        self.name = spec.name
        self.state = DecisionState(self.id, spec.name, spec.actor, spec.nhi, self.context)
        self.decision = self.state

    def _activate(self) -> None:
        super()._activate()
        self._tokens.append(("decision", enter_decision(self.state)))

    def _deactivate(self) -> None:
        while self._tokens and isinstance(self._tokens[-1], tuple):
            exit_decision(self._tokens.pop()[1])
        super()._deactivate()


class DecisionSpec(StepSpec[Decision]):
    handle_type = Decision
    step = c.STEP_DECISION

    def __init__(
        self,
        name: str,
        trigger: str | None = None,
        *,
        actor: str | None = None,
        nhi: str | None = None,
        decision_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(actor=actor, nhi=nhi, attributes=attributes)
        self.name = name
        self.trigger = trigger
        self._fixed_id = decision_id

    def new_decision_id(self) -> str:
        """Each decision (each call of a decorated function) gets its own id, unless one was given."""
        return self._fixed_id or uuid.uuid4().hex

    def span_name(self) -> str:
        return f"decision {self.name}"

    def _common_attributes(self, decision: DecisionState | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {c.STEP: self.step}
        if self.actor:
            attributes[c.ACTOR_ID] = self.actor
        if self.nhi:
            attributes[c.NHI_ID] = self.nhi
        return attributes

    def step_attributes(self, decision: DecisionState | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {c.DECISION_NAME: self.name}
        if self.trigger:
            attributes[c.DECISION_TRIGGER] = self.trigger
        return attributes

    def inferred_links(self, decision: DecisionState | None) -> list[Any]:
        return []

    def _started(self, handle: Decision) -> None:
        handle.span.set_attribute(c.DECISION_ID, handle.id)


@overload
def decision(name: F, /) -> F: ...


@overload
def decision(
    name: str,
    trigger: str | None = None,
    *,
    actor: str | None = None,
    nhi: str | None = None,
    decision_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> DecisionSpec: ...


def decision(
    name: str | Callable[..., Any],
    trigger: str | None = None,
    *,
    actor: str | None = None,
    nhi: str | None = None,
    decision_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> DecisionSpec | Callable[..., Any]:
    """Open a decision: ``with provtrace.decision("contain INC-4711", trigger=...) as d:``.

    Also a decorator (``@provtrace.decision("triage")``, or bare ``@provtrace.decision``), where
    every call is one decision named after the function unless a name is given.
    """
    if callable(name):
        return DecisionSpec(name.__name__, actor=actor, nhi=nhi, attributes=attributes)(name)
    return DecisionSpec(name, trigger, actor=actor, nhi=nhi, decision_id=decision_id, attributes=attributes)

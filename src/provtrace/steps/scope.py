"""The decision scope: what a decision has gathered so far, for link inference and the guard.

Held in a context variable, so it follows the code into threads started with a copied context
and into asyncio tasks; child tasks add to the same decision.
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import heapq
import threading
import time
from collections.abc import Callable

from opentelemetry.trace import SpanContext

from provtrace.authorization import ApprovalEvidence, PolicyEvidence


@dataclasses.dataclass(frozen=True)
class StepFact:
    """What the guard and link inference need to know about a finished or running step; for
    policy checks and approvals, the evidence the shared authorization predicate reads."""

    step: str
    context: SpanContext
    verdict: str = ""  # allow/deny, approved/rejected, pass/fail, an action's outcome
    action_type: str = ""
    evidence: PolicyEvidence | ApprovalEvidence | None = None


@dataclasses.dataclass(frozen=True)
class Proposal:
    """A tool call a model's output proposed: what a later step must match to be ``triggered_by``
    that model call."""

    context: SpanContext  # the llm_call whose output proposed it
    call_id: str
    name: str
    arguments_sha256: str


class DecisionState:
    """The steps recorded so far inside one decision."""

    def __init__(
        self, decision_id: str, name: str, actor: str | None, nhi: str | None, context: SpanContext
    ) -> None:
        self.decision_id = decision_id
        self.name = name
        self.actor = actor
        self.nhi = nhi
        self.context = context
        self._lock = threading.Lock()
        # Per step kind, the latest fact of each span, most recent last: a verdict changed later
        # (allow, then deny) replaces the earlier one.
        self._facts: dict[str, collections.OrderedDict[int, StepFact]] = collections.defaultdict(
            collections.OrderedDict
        )
        self._proposals: list[Proposal] = []
        self._carried_out: set[int] = set()  # indexes of proposals a step was linked to

    def add(self, fact: StepFact) -> None:
        with self._lock:
            facts = self._facts[fact.step]
            facts[fact.context.span_id] = fact
            facts.move_to_end(fact.context.span_id)

    def latest(self, step: str, verdict: str | None = None) -> StepFact | None:
        with self._lock:
            for fact in reversed(self._facts.get(step, {}).values()):
                if verdict is None or fact.verdict == verdict:
                    return fact
        return None

    def all(self, step: str) -> list[StepFact]:
        with self._lock:
            return list(self._facts.get(step, {}).values())

    def propose(self, proposal: Proposal) -> None:
        with self._lock:
            self._proposals.append(proposal)

    def proposal(
        self, *, call_id: str | None = None, name: str | None = None, arguments_sha256: str = ""
    ) -> Proposal | None:
        """The latest proposal a step matches: by tool call id when the step carries one, else by
        canonical arguments (and by tool name, when ``name`` is given) among the proposals no step
        carried out yet. A model's tool call is carried out once: a later step with the same name
        and arguments is the agent's own (it links only by the id, or an explicit
        ``triggered_by=``)."""
        with self._lock:
            for index in range(len(self._proposals) - 1, -1, -1):
                proposal = self._proposals[index]
                if call_id:
                    matched = proposal.call_id == call_id
                else:
                    matched = (
                        bool(arguments_sha256)
                        and index not in self._carried_out
                        and proposal.arguments_sha256 == arguments_sha256
                        and (name is None or proposal.name == name)
                    )
                if matched:
                    self._carried_out.add(index)
                    return proposal
        return None


_current: contextvars.ContextVar[DecisionState | None] = contextvars.ContextVar(
    "provtrace_decision", default=None
)


def current_decision() -> DecisionState | None:
    return _current.get()


def enter_decision(state: DecisionState) -> contextvars.Token[DecisionState | None]:
    return _current.set(state)


def exit_decision(token: contextvars.Token[DecisionState | None]) -> None:
    try:
        _current.reset(token)
    except ValueError:  # exited in another context (e.g. a generator finished elsewhere)
        _current.set(None)


class FactRegistry:
    """Facts of recent steps by span id, so an explicit link to a handle from another decision
    can still be checked by the guard, and the nonces of approvals already used. Both bounded:
    the oldest facts are forgotten first; a used nonce is forgotten only once its approval has
    expired (by the monotonic clock, so a clock set back cannot revive it), and when too many
    unexpired ones are held, new approvals are refused rather than old ones forgotten."""

    def __init__(
        self,
        capacity: int = 10_000,
        nonce_capacity: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._capacity = capacity
        self._nonce_capacity = nonce_capacity
        self._lock = threading.Lock()
        self._facts: collections.OrderedDict[int, StepFact] = collections.OrderedDict()
        self._used_nonces: dict[str, float] = {}  # nonce -> monotonic time its approval expires
        self._expiries: list[tuple[float, str]] = []  # a heap of the same

    def put(self, fact: StepFact) -> None:
        with self._lock:
            self._facts[fact.context.span_id] = fact
            self._facts.move_to_end(fact.context.span_id)
            while len(self._facts) > self._capacity:
                self._facts.popitem(last=False)

    def get(self, context: SpanContext) -> StepFact | None:
        with self._lock:
            return self._facts.get(context.span_id)

    def consume_nonce(self, nonce: str, expires_in_s: float) -> bool:
        """Mark an approval nonce used until its approval expires (``expires_in_s`` from now);
        False if it already was (approvals are single-use) or the store is full."""
        now = self._clock()
        with self._lock:
            while self._expiries and self._expiries[0][0] < now:
                _, old = heapq.heappop(self._expiries)
                if self._used_nonces.get(old, now) < now:
                    del self._used_nonces[old]
            if nonce in self._used_nonces or len(self._used_nonces) >= self._nonce_capacity:
                return False
            deadline = now + max(expires_in_s, 0.0)
            self._used_nonces[nonce] = deadline
            heapq.heappush(self._expiries, (deadline, nonce))
            return True

    def nonce_used(self, nonce: str) -> bool:
        with self._lock:
            return nonce in self._used_nonces


FACTS = FactRegistry()

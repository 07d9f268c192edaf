"""provtrace: audit-grade provenance for AI agents acting with non-human identities.

Decorate or wrap the steps of an agent's decision (model calls, tool calls, secret fetches, policy
checks, approvals, actions, verifications); provtrace records them as OpenTelemetry spans with
causal links, checks that each decision's record is complete, seals it, and delivers it to an
OpenTelemetry Collector or a local archive.
"""

from provtrace.__about__ import __version__
from provtrace.config import Provtrace, configure, current
from provtrace.content import digest
from provtrace.errors import ConfigurationError, InputError, ProvenanceViolation, ProvtraceError
from provtrace.instrument import instrument
from provtrace.rules import SegmentContext, Violation
from provtrace.runtime import Health
from provtrace.sealing import ViolationReport
from provtrace.steps import (
    Action,
    Approval,
    Decision,
    LlmCall,
    PolicyCheck,
    SecretFetch,
    ToolCall,
    Verification,
    action,
    approval,
    decision,
    llm_call,
    policy_check,
    secret_fetch,
    tool_call,
    verification,
)

__all__ = [
    "Action",
    "Approval",
    "ConfigurationError",
    "Decision",
    "Health",
    "InputError",
    "LlmCall",
    "PolicyCheck",
    "ProvenanceViolation",
    "Provtrace",
    "ProvtraceError",
    "SecretFetch",
    "SegmentContext",
    "ToolCall",
    "Verification",
    "Violation",
    "ViolationReport",
    "__version__",
    "action",
    "approval",
    "configure",
    "current",
    "decision",
    "digest",
    "instrument",
    "llm_call",
    "policy_check",
    "secret_fetch",
    "tool_call",
    "verification",
]

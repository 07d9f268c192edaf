"""provtrace: audit-grade provenance for AI agents acting with non-human identities.

Decorate or wrap the steps of an agent's decision (model calls, tool calls, secret fetches, policy
checks, approvals, actions, verifications); provtrace records them as OpenTelemetry spans with
causal links, checks that each decision's record is complete, seals it, and delivers it to an
OpenTelemetry Collector or a local archive.

The recording API is loaded with the package; the configuration and export machinery behind
``configure()`` only when it is first used, so importing provtrace stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provtrace.__about__ import __version__
from provtrace.content import digest
from provtrace.errors import ConfigurationError, InputError, ProvenanceViolation, ProvtraceError
from provtrace.rules import SegmentContext, Violation
from provtrace.runtime import Health
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

if TYPE_CHECKING:
    from provtrace.config import Provtrace, configure, current
    from provtrace.instrument import instrument
    from provtrace.sealing import ViolationReport

_LAZY = {
    "Provtrace": "provtrace.config",
    "configure": "provtrace.config",
    "current": "provtrace.config",
    "instrument": "provtrace.instrument",
    "ViolationReport": "provtrace.sealing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'provtrace' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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

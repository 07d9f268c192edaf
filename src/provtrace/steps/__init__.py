"""The decision scope and the eight provenance steps, as context managers and decorators."""

from provtrace.steps.action import Action, Verification, action, verification
from provtrace.steps.base import StepHandle, StepSpec
from provtrace.steps.calls import LlmCall, ToolCall, llm_call, tool_call
from provtrace.steps.decision import Decision, decision
from provtrace.steps.governance import Approval, PolicyCheck, approval, policy_check
from provtrace.steps.scope import current_decision
from provtrace.steps.secrets import SecretFetch, secret_fetch

__all__ = [
    "Action",
    "Approval",
    "Decision",
    "LlmCall",
    "PolicyCheck",
    "SecretFetch",
    "StepHandle",
    "StepSpec",
    "ToolCall",
    "Verification",
    "action",
    "approval",
    "current_decision",
    "decision",
    "llm_call",
    "policy_check",
    "secret_fetch",
    "tool_call",
    "verification",
]

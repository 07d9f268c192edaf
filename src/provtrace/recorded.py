"""The content a step recorded, as stored: which attribute holds which part, its digest, and
what the investigator must know about the text (redacted, truncated, keyed digest, not JSON).

Everything read here came from an archive or a query service and is untrusted: a content
attribute may hold any value, text that is not JSON, or JSON cut short by the size cap.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from provtrace import conventions as c
from provtrace.model import SpanRecord

_REDACTION_MARKER = re.compile(r"\[REDACTED:[^\]\s]*\]")
# Deep enough for any real message list; deeper text is shown as text, never recursed into.
_MAX_JSON_DEPTH = 64


@dataclasses.dataclass(frozen=True)
class Slot:
    """Where one part of a step's content lives: a label, the content and the digest attribute."""

    label: str
    content_attribute: str
    digest_attribute: str


_INPUT = Slot("input", c.INPUT_CONTENT, c.INPUT_SHA256)
_OUTPUT = Slot("output", c.OUTPUT_CONTENT, c.OUTPUT_SHA256)
SLOTS: dict[str, tuple[Slot, ...]] = {
    c.STEP_LLM_CALL: (
        Slot("prompt", c.GEN_AI_INPUT_MESSAGES, c.INPUT_SHA256),
        Slot("model output", c.GEN_AI_OUTPUT_MESSAGES, c.OUTPUT_SHA256),
    ),
    c.STEP_TOOL_CALL: (
        Slot("arguments", c.GEN_AI_TOOL_CALL_ARGUMENTS, c.INPUT_SHA256),
        Slot("result", c.GEN_AI_TOOL_CALL_RESULT, c.OUTPUT_SHA256),
    ),
    c.STEP_POLICY_CHECK: (Slot("policy input", c.INPUT_CONTENT, c.INPUT_SHA256), _OUTPUT),
    c.STEP_APPROVAL: (Slot("bound parameters", c.INPUT_CONTENT, c.APPROVAL_PARAMS_SHA256), _OUTPUT),
    c.STEP_ACTION: (
        Slot("parameters", c.ACTION_PARAMS_CONTENT, c.ACTION_PARAMS_SHA256),
        Slot("before", c.CHANGE_BEFORE_CONTENT, c.CHANGE_BEFORE_SHA256),
        Slot("after", c.CHANGE_AFTER_CONTENT, c.CHANGE_AFTER_SHA256),
        _INPUT,
        _OUTPUT,
    ),
}
DEFAULT_SLOTS = (_INPUT, _OUTPUT)


@dataclasses.dataclass(frozen=True)
class Content:
    """One part of a step's content. ``text`` is None when the capture mode stored none;
    ``value`` is the parsed JSON when the text is whole JSON (``parsed``)."""

    label: str
    attribute: str
    digest_attribute: str
    sha256: str | None
    keyed: bool
    text: str | None
    truncated: bool
    redactions: int
    parsed: bool
    value: Any = None

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "attribute": self.attribute,
            "digest_attribute": self.digest_attribute,
            "sha256": self.sha256,
            "keyed": self.keyed,
            "text": self.text,
            "truncated": self.truncated,
            "redactions": self.redactions,
            "json": self.value if self.parsed else None,
        }


def parse_json(text: str) -> tuple[bool, Any]:
    """Whether ``text`` is JSON (bounded in depth), and its value."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return False, None
    return (True, value) if _depth_ok(value) else (False, None)


def _depth_ok(value: Any) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def contents_of(record: SpanRecord) -> tuple[Content, ...]:
    """The content parts the step recorded (a part with neither digest nor text is left out)."""
    truncated = set(record.attr_strings(c.CONTENT_TRUNCATED))
    keyed = set(record.attr_strings(c.CONTENT_KEYED))
    out = []
    for slot in SLOTS.get(record.step or "", DEFAULT_SLOTS):
        raw = record.attributes.get(slot.content_attribute)
        text = raw if isinstance(raw, str) else (None if raw is None else str(raw))
        digest = record.attr_str(slot.digest_attribute)
        if text is None and digest is None:
            continue
        cut = slot.content_attribute in truncated
        parsed, value = (False, None) if text is None or cut else parse_json(text)
        out.append(
            Content(
                label=slot.label,
                attribute=slot.content_attribute,
                digest_attribute=slot.digest_attribute,
                sha256=digest,
                keyed=slot.digest_attribute in keyed,
                text=text,
                truncated=cut,
                redactions=len(_REDACTION_MARKER.findall(text)) if text else 0,
                parsed=parsed,
                value=value,
            )
        )
    return tuple(out)

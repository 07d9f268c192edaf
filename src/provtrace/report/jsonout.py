"""The json report: the whole chain, content unfolded and digests full length, in the shape
docs/reconstruct.schema.json documents (``schema`` names its version; fields are only added)."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

from provtrace.reconstruct import DecisionChain
from provtrace.report.options import RenderOptions
from provtrace.report.verdicts import Verdicts

SCHEMA_ID = "https://provtrace.dev/schemas/reconstruct/v1"


def document(chain: DecisionChain, verdicts: Verdicts) -> dict[str, Any]:
    data = chain.as_json()
    head = {
        "schema": SCHEMA_ID,
        "trace_id": chain.trace_id,
        "source": verdicts.source,
        "verdict": {
            "completeness": verdicts.completeness,
            "integrity": verdicts.integrity,
            "ok": verdicts.ok,
        },
        "integrity": verdicts.report.as_json() if verdicts.report is not None else None,
    }
    return {**head, **data}


def plain(value: object) -> object:
    """Evidence values as JSON can hold them: a kvlist as an object, bytes as base64 text, a
    float that is not finite as its text (JSON has no NaN), tuples as arrays."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def dumps(data: object) -> str:
    return json.dumps(plain(data), indent=2, ensure_ascii=False, allow_nan=False)


def render(chain: DecisionChain, verdicts: Verdicts, options: RenderOptions) -> str:
    del options  # json is always whole: --full and --step shape the reading formats only
    return dumps(document(chain, verdicts)) + "\n"

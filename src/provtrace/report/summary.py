"""Report lines that are not about one step's story: seals, violations, other spans, and the raw
attributes of a step for its own view."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from provtrace.model import AttrValue
from provtrace.reconstruct import ChainStep, DecisionChain
from provtrace.report.basics import printable


def seal_lines(chain: DecisionChain) -> list[str]:
    """One line per stream: which seals of it cover this trace, and whether they are signed."""
    streams: dict[str, list[int]] = {}
    signed: dict[str, bool] = {}
    for seal in chain.seals:
        streams.setdefault(seal.stream, []).append(seal.seq)
        signed[seal.stream] = signed.get(seal.stream, True) and seal.signed
    lines = [
        f"sealed by {printable(stream)}: seal(s) #{', #'.join(map(str, seqs))}"
        + ("" if signed[stream] else " (UNSIGNED)")
        for stream, seqs in streams.items()
    ]
    if not chain.seals:
        lines.append("no seal covers this trace")
    if chain.checkpoints:
        lines.append(f"{chain.checkpoints} signed checkpoint(s) of the streams' Merkle logs beside the seals")
    if chain.other_spans:
        names = ", ".join(dict.fromkeys(printable(n) for n in chain.other_names))
        lines.append(f"{chain.other_spans} other span(s), not provenance steps: {names}")
    return lines


def missing_decision(chain: DecisionChain) -> str:
    """Why a trace shows no decision: held in quarantine at the source, or never recorded."""
    held = sorted({str(v["quarantine_id"]) for v in chain.violations if v.get("quarantine_id")})
    if held and not chain.steps:
        return (
            f"its steps were held in quarantine at the source ({printable(', '.join(held))}): "
            "provtrace quarantine show ID on the agent's host"
        )
    return "no decision span (a step ran outside any decision)"


def violation_lines(chain: DecisionChain) -> list[str]:
    out = []
    for v in chain.violations:
        where = " ".join(
            f"{k}={printable(str(v[k]))}"
            for k in ("step", "span_id", "attribute", "quarantine_id")
            if v.get(k)
        )
        out.append(f"{printable(str(v.get('code', '')))} {where}".rstrip())
    for seal in chain.seals:
        if seal.violations:
            out.append(f"sealed with {printable(', '.join(seal.violations))} (seal #{seal.seq})")
    return out


def value_text(value: AttrValue) -> str:
    """An attribute value as JSON text (bytes as base64), on one line."""
    return printable(json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":")))


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return "base64:" + base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def attribute_lines(step: ChainStep) -> list[str]:
    lines = [f"span {step.span_id} ({printable(step.name)}, {step.kind}, {printable(step.service)})"]
    lines += [f"  {printable(key)} = {value_text(value)}" for key, value in step.attributes.items()]
    if step.server is not None:
        lines.append(
            f"server span {step.server.span_id} "
            f"({printable(step.server.name)}, {printable(step.server.service)})"
        )
        lines += [
            f"  {printable(key)} = {value_text(value)}" for key, value in step.server.attributes.items()
        ]
    return lines

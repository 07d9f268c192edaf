"""The completeness, integrity and auditors pages name what the code defines, and nothing it does not."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import provtrace
from provtrace import conventions as c
from provtrace import verify
from provtrace.counters import COUNTER_NAMES, GAUGE_NAMES
from provtrace.rules import RULES

DOCS = Path(__file__).resolve().parents[2] / "docs"
FINDING_NAME = re.compile(r"[a-z]+(?:_[a-z]+)+")
ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
RULE_CODE = re.compile(r"[A-Z]+(?:-[A-Z]+)*")


def rule_codes() -> set[str]:
    return {value for name, value in vars(c).items() if name.startswith("RULE_") and isinstance(value, str)}


def finding_kinds() -> set[str]:
    return {
        value
        for name, value in vars(verify).items()
        if name.isupper() and isinstance(value, str) and FINDING_NAME.fullmatch(value)
    }


def attribute_names() -> set[str]:
    """Every attribute name provtrace defines or reuses (provenance.*, OTel GenAI, MCP, general)."""
    return {value for value in vars(c).values() if isinstance(value, str) and ATTRIBUTE_NAME.fullmatch(value)}


def table_keys(page: str) -> set[str]:
    """The first column of every table row of a page, where it is one `code` name."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE))


def test_the_completeness_page_has_a_row_for_every_rule_code() -> None:
    codes = rule_codes()
    assert len(codes) >= 11
    rows = table_keys("completeness.md")
    assert sorted(codes - rows) == []
    assert sorted(code for code in rows if code.isupper() and code not in codes) == []


def test_the_integrity_page_has_a_row_for_every_verify_finding() -> None:
    kinds = finding_kinds()
    assert {"altered_span", "signatures_unchecked", "rewritten_history"} <= kinds
    rows = table_keys("integrity.md")
    assert sorted(kinds - rows) == []
    assert sorted(name for name in rows if FINDING_NAME.fullmatch(name) and name not in kinds) == []


def test_every_name_the_auditors_page_cites_exists_in_the_code() -> None:
    text = (DOCS / "auditors.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"`([^`\s]+)`", text))
    attributes = {name for name in cited if ATTRIBUTE_NAME.fullmatch(name)}
    codes = {name for name in cited if RULE_CODE.fullmatch(name)}
    snake = {name for name in cited if FINDING_NAME.fullmatch(name)}
    assert len(attributes) > 40 and len(codes) > 5 and len(snake) > 10
    assert sorted(attributes - attribute_names()) == []
    assert sorted(codes - rule_codes()) == []
    # snake_case names are verify findings, steps, link types, settings of configure() or counters
    settings = set(inspect.signature(provtrace.configure).parameters)
    known = (
        finding_kinds() | set(c.STEPS) | set(c.LINK_TYPES) | settings | set(COUNTER_NAMES) | set(GAUGE_NAMES)
    )
    assert sorted(snake - known) == []


def test_the_profiles_column_of_each_rule_is_the_profiles_it_runs_in() -> None:
    text = (DOCS / "completeness.md").read_text(encoding="utf-8")
    for spec in RULES:
        (row,) = re.findall(rf"^\| `{re.escape(spec.code)}` \| ([^|]+) \|", text, flags=re.MULTILINE)
        assert {p.strip() for p in row.split(",")} == set(spec.profiles), spec.code


REQUIRED_CONTROLS = (
    "PR.PS-04",
    "DE.CM-",
    *(f"| AU-{n} |" for n in (2, 3, 8, 9, 10, 11, 12)),
    "| Art. 12 ",
    "| Art. 19 ",
    "| Art. 26(6) ",
    *(f"| NHI{n} " for n in range(1, 11)),
    *(f"| ASI{n:02d} " for n in range(1, 11)),
    "| A.8.15 ",
    "| A.8.17 ",
)


def test_the_auditors_page_has_a_row_for_every_control_it_promises() -> None:
    text = (DOCS / "auditors.md").read_text(encoding="utf-8")
    assert [control for control in REQUIRED_CONTROLS if control not in text] == []

"""The published conventions page names every attribute provtrace defines."""

from __future__ import annotations

from pathlib import Path

from provtrace import conventions as c

DOC = Path(__file__).resolve().parents[2] / "docs" / "conventions.md"


def attribute_names() -> set[str]:
    names = set()
    for name, value in vars(c).items():
        if name.isupper() and isinstance(value, str) and "." in value and not value.startswith("http"):
            names.add(value)
    return names


def test_every_attribute_constant_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = sorted(name for name in attribute_names() if f"`{name}`" not in text)
    assert missing == []
    assert len(attribute_names()) > 60

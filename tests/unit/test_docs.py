"""The published conventions page is generated from provtrace.conventions and names every attribute."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from provtrace import conventions as c

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "conventions.md"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "conventions_page", REPO / "scripts" / "conventions_page.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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


def test_the_committed_page_is_the_generated_one() -> None:
    assert DOC.read_text(encoding="utf-8") == generator().render(), (
        "docs/conventions.md differs from what scripts/conventions_page.py generates: run it"
    )


def test_a_new_constant_without_a_description_fails_the_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c, "LEASE_OWNER", "provenance.lease.owner", raising=False)
    page = generator()
    with pytest.raises(page.ConventionsPageError, match="LEASE_OWNER"):
        page.render()


def test_a_required_attribute_is_listed_as_required_on_its_step(monkeypatch: pytest.MonkeyPatch) -> None:
    required = {**c.REQUIRED_ATTRIBUTES, c.STEP_VERIFICATION: (c.VERIFICATION_RESULT, c.VERIFICATION_METHOD)}
    monkeypatch.setattr(c, "REQUIRED_ATTRIBUTES", required)
    page = generator()
    with pytest.raises(
        page.ConventionsPageError, match=r"provenance\.verification\.method is required on verification"
    ):
        page.render()


def test_every_step_has_its_required_attributes_in_its_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    for step in c.STEPS:
        section = text.split(f"### `{step}`\n", 1)[1].split("\n### ", 1)[0]
        for name in c.COMMON_REQUIRED + c.REQUIRED_ATTRIBUTES[step]:
            row = next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))
            assert row.split(" | ")[2] == "required", row


def test_a_new_seal_reason_without_a_description_fails_the_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(c, "SEAL_REASON_REPLAYED", "replayed", raising=False)
    page = generator()
    with pytest.raises(page.ConventionsPageError, match="replayed"):
        page.render()

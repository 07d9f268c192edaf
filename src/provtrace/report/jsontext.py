"""JSON as people read it: a value that fits the width on one line, else one member per line,
each member again on one line if it fits (what jq and prettier do, and what makes a diff of two
documents show the members that changed)."""

from __future__ import annotations

import json
from typing import Any

WIDTH = 88  # characters a JSON line may take before it is broken up


def _one_line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def fit(value: Any, width: int = WIDTH, *, expand: int = 0) -> list[str]:
    """``value`` as lines of at most ``width`` characters where breaking it up can achieve that;
    containers in the first ``expand`` levels are broken up even when they would fit (so that
    two versions of a document line up member by member)."""
    out: list[str] = []
    # Work items: a value to lay out (indent, prefix, suffix), or a line written as it is.
    # Iterative, so hostile nesting cannot exhaust the stack.
    stack: list[tuple[Any, int, str, str] | str] = [(value, 0, "", "")]
    while stack:
        work = stack.pop()
        if isinstance(work, str):
            out.append(work)
            continue
        item, indent, prefix, suffix = work
        pad = " " * indent
        compact = _one_line(item)
        fits = indent + len(prefix + compact + suffix) <= width and indent // 2 >= expand
        if not (isinstance(item, (dict, list)) and item) or fits:
            out.append(f"{pad}{prefix}{compact}{suffix}")
            continue
        members: list[tuple[str, Any]] = (
            [(json.dumps(k, ensure_ascii=False) + ": ", v) for k, v in item.items()]
            if isinstance(item, dict)
            else [("", v) for v in item]
        )
        opener, closer = ("{", "}") if isinstance(item, dict) else ("[", "]")
        out.append(f"{pad}{prefix}{opener}")
        stack.append(f"{pad}{closer}{suffix}")
        for position in range(len(members) - 1, -1, -1):
            key, member = members[position]
            stack.append((member, indent + 2, key, "," if position < len(members) - 1 else ""))
    return out

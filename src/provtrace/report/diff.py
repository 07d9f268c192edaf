"""The change an action recorded as a readable diff of its before and after content.

Both sides are laid out as JSON when they parse (see ``jsontext.fit``: a diff then shows the
members that changed), else the stored text. A short change is shown whole with its context; a long one as
hunks with three lines of context, the way ``diff -u`` would.
"""

from __future__ import annotations

import difflib

from provtrace.recorded import Content
from provtrace.report.basics import printable
from provtrace.report.jsontext import fit

WHOLE_CONTEXT_LINES = 40


def _side(part: Content | None) -> list[str]:
    if part is None or part.text is None:
        return []
    if part.parsed:
        return fit(part.value, expand=1)
    return part.text.split("\n")


def change_lines(before: Content | None, after: Content | None) -> list[tuple[str, str]]:
    """``(line, style)`` pairs: style "add", "remove", "hunk" or "" for context."""
    old, new = _side(before), _side(after)
    if not old and not new:
        return []
    if old == new:
        return [("(before and after are equal)", "")]
    whole = len(old) + len(new) <= WHOLE_CONTEXT_LINES
    context = max(len(old), len(new)) if whole else 3
    out: list[tuple[str, str]] = []
    for line in list(difflib.unified_diff(old, new, lineterm="", n=context))[2:]:
        if line.startswith("@@"):
            if not whole:
                out.append((printable(line), "hunk"))
        elif line.startswith("+"):
            out.append(("+ " + printable(line[1:]), "add"))
        elif line.startswith("-"):
            out.append(("- " + printable(line[1:]), "remove"))
        else:
            out.append(("  " + printable(line[1:]), ""))
    return out

"""The markdown report, for tickets and audit files: the same story as the text report, content
in fenced blocks (the change as a ``diff`` block), nesting as nested lists."""

from __future__ import annotations

from provtrace import conventions as c
from provtrace.reconstruct import ChainStep, DecisionChain
from provtrace.report import words
from provtrace.report.basics import offset, printable, timestamp
from provtrace.report.options import RenderOptions
from provtrace.report.summary import attribute_lines, missing_decision, seal_lines, violation_lines
from provtrace.report.verdicts import Verdicts

_MAX_INDENT_LEVELS = 8


def _inline(text: str) -> str:
    """Text inside inline code: backticks cannot close it early."""
    text = printable(text)
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def _escape(text: str) -> str:
    """Markdown text that came from the evidence: no markup of its own (an underscore inside a
    word, as in ``triggered_by``, is no markup and stays as it is)."""
    text = printable(text)
    out = []
    for i, ch in enumerate(text):
        inside_word = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
        if ch in "\\`*[]<>|" or (ch == "_" and not inside_word):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _fence(lines: list[str], language: str, pad: str) -> list[str]:
    longest = max((len(line) - len(line.lstrip("`")) for line in lines), default=0)
    marker = "`" * max(3, longest + 1)
    return [f"{pad}{marker}{language}", *(f"{pad}{line}" for line in lines), f"{pad}{marker}"]


def _block(block: words.Block, pad: str, *, full: bool, index: int) -> list[str]:
    digests = "".join(f" · {label} {_inline(digest)}" for label, digest in block.digests)
    out = [f"{pad}- **{_escape(block.title)}**{digests}"]
    inner = pad + "  "
    out += [f"{inner}- _{_escape(note)}_" for note in block.notes]
    lines = [line.text for line in block.lines]
    if lines:
        shown = lines if full or len(lines) <= words.FOLD_LINES else lines[: words.FOLD_LINES - 1]
        out += _fence(shown, "diff" if block.title == "change" else "", inner)
        if len(shown) < len(lines):
            out.append(f"{inner}- _… {len(lines) - len(shown)} more line(s): --full, or --step {index}_")
    return out


def _step(step: ChainStep, chain: DecisionChain, verdicts: Verdicts, origin: int, *, full: bool) -> list[str]:
    home = chain.decisions[0] if chain.decisions else None
    pad = "  " * min(step.depth, _MAX_INDENT_LEVELS)
    extra = words.who(step, home)
    marks = verdicts.marks(step.span_ids)
    title = (
        f"{pad}- **#{step.index}** {offset(step.start_ns, origin)} **{_escape(step.step)}** "
        f"{_escape(words.describe(step))}"
        + (f" _({_escape(extra)})_" if extra else "")
        + (" **ERROR**" if words.says_error(step) else "")
        + (f" **✗ {', '.join(marks).upper()}**" if marks else "")
    )
    inner = pad + "  "
    out = [title]
    out += [f"{inner}- {_escape(text)}" for text in words.link_lines(step, chain)]
    out += [
        f"{inner}- " + (f"**{_escape(text)}**" if problem else _escape(text))
        for text, problem in words.observations(step, chain)
    ]
    out += [f"{inner}- {_escape(text)}" for text in words.detail_lines(step)]
    for block in [*words.blocks(step), *words.server_blocks(step)]:
        out += _block(block, inner, full=full, index=step.index)
    return out


def render(chain: DecisionChain, verdicts: Verdicts, options: RenderOptions) -> str:
    title = ", ".join(printable(str(d.facts.get(c.DECISION_NAME, d.name))) for d in chain.decisions)
    out = [f"# Decision {_escape(title)}" if title else f"# Trace {chain.trace_id}", ""]
    if not chain.decisions:
        out += [_escape(missing_decision(chain)), ""]
    streams = len({s.stream for s in chain.seals})
    out.append(
        f"- **Evidence: {chain.completeness.upper()}** ({len(chain.seals)} seal(s) from {streams} stream(s))"
    )
    out.append(f"- **Integrity: {verdicts.integrity}** ({_escape(verdicts.integrity_detail())})")
    out += [
        f"  - {'**' if error else ''}{_escape(text)}{'**' if error else ''}"
        for text, error in verdicts.finding_lines()
    ]
    out += [f"  - **violation {_escape(text)}**" for text in violation_lines(chain)]
    out.append(f"- Source: {_escape(verdicts.source)}")
    out.append(f"- Trace: {_inline(chain.trace_id)}")
    for decision in chain.decisions:
        out.append(
            f"- Trigger {_escape(str(decision.facts.get(c.DECISION_TRIGGER, '(none)')))}; actor "
            f"{_escape(decision.actor or '(none)')} as {_escape(decision.nhi or '(no NHI)')} in "
            f"{_escape(decision.service or '?')}, "
            f"{timestamp(decision.start_ns)} → {timestamp(decision.end_ns)}"
        )
    out.append("")
    origin = (
        chain.decisions[0].start_ns if chain.decisions else min((s.start_ns for s in chain.steps), default=0)
    )
    if options.step is not None:
        step = chain.step_at(options.step)
        if step is None:
            return (
                "\n".join([*out, f"No step #{options.step} in this trace (it has {len(chain.steps)})."])
                + "\n"
            )
        out += [
            "## Step",
            "",
            *_step(step, chain, verdicts, origin, full=True),
            "",
            "## Recorded attributes",
            "",
        ]
        out += _fence(attribute_lines(step), "", "")
        return "\n".join(out) + "\n"
    out += ["## Steps", ""]
    for step in chain.steps:
        out += _step(step, chain, verdicts, origin, full=options.full)
    out += ["", "## Seals", ""]
    out += [f"- {_escape(text)}" for text in seal_lines(chain)]
    return "\n".join(out) + "\n"

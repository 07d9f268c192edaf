"""The terminal report (rich): the verdicts first, then one header line per step and its content
below it, indented by nesting, long content folded. Colour only on a terminal; the text is the
same with or without it."""

from __future__ import annotations

import io
from collections.abc import Iterable

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from provtrace import conventions as c
from provtrace.reconstruct import ChainStep, DecisionChain
from provtrace.report import words
from provtrace.report.basics import offset, printable, short, timestamp
from provtrace.report.options import RenderOptions
from provtrace.report.summary import attribute_lines, missing_decision, seal_lines, violation_lines
from provtrace.report.verdicts import Verdicts

_STYLES = {
    "role": "",
    "call": "cyan",
    "json": "",
    "add": "green",
    "remove": "red",
    "hunk": "magenta",
    "error": "bold red",
}
_STEP_WIDTH = 13  # the step kind column of a header line
_MAX_INDENT_LEVELS = 8


class _Out:
    def __init__(self, options: RenderOptions) -> None:
        self.buffer = io.StringIO()
        self.console = Console(
            file=self.buffer,
            width=options.width,
            color_system="standard" if options.color else None,
            force_terminal=options.color,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=False,
        )

    def line(self, text: Text | str, indent: int = 0, *, no_wrap: bool = False) -> None:
        body = text if isinstance(text, Text) else Text(text)
        if no_wrap:
            body.no_wrap = True
            body.overflow = "ellipsis"
        self.console.print(Padding(body, (0, 0, 0, indent)) if indent else body)

    def blank(self) -> None:
        self.console.print()

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.buffer.getvalue().split("\n"))


def _verdict_style(good: bool) -> str:
    return "bold green" if good else "bold red"


def _verdicts(out: _Out, chain: DecisionChain, verdicts: Verdicts) -> None:
    streams = len({s.stream for s in chain.seals})
    evidence = Text("EVIDENCE   ", style="bold")
    evidence.append(chain.completeness.upper(), style=_verdict_style(verdicts.complete))
    evidence.append(f"  {len(chain.seals)} seal(s) from {streams} stream(s)")
    out.line(evidence)
    integrity = Text("INTEGRITY  ", style="bold")
    integrity.append(verdicts.integrity, style=_verdict_style(verdicts.intact))
    integrity.append(f"  {verdicts.integrity_detail()}")
    out.line(integrity)
    for text, error in verdicts.finding_lines():
        out.line(Text(text, style="red" if error else "yellow"), 2)
    for text in violation_lines(chain):
        out.line(Text(f"VIOLATION {text}", style="red"), 2)
    out.line(Text(f"SOURCE     {printable(verdicts.source)}"))


def _decisions(out: _Out, chain: DecisionChain) -> None:
    for decision in chain.decisions:
        title = Text("Decision ", style="bold")
        title.append(printable(str(decision.facts.get(c.DECISION_NAME, decision.name))), style="bold")
        title.append(f"  trace {chain.trace_id}")
        out.line(title)
        facts = [
            f"trigger {printable(str(decision.facts.get(c.DECISION_TRIGGER, '(none)')))}",
            f"actor {printable(decision.actor or '(none)')}",
            f"as {printable(decision.nhi or '(no NHI)')}",
            f"service {printable(decision.service or '?')}",
        ]
        out.line(" · ".join(facts), 2)
        seconds = max(0, decision.end_ns - decision.start_ns) / 1e9
        out.line(f"{timestamp(decision.start_ns)} → {timestamp(decision.end_ns)} ({seconds:.3f} s)", 2)
    if not chain.decisions:
        out.line(Text(f"Trace {chain.trace_id}: {missing_decision(chain)}", "red"))


def header(step: ChainStep, origin: int, home: ChainStep | None, marks: list[str], width: int) -> Text:
    """The one line that introduces a step: what it did is shortened so that who did it and any
    finding always fit in ``width``."""
    line = Text(f"#{step.index:<3}", style="bold")
    line.append(f"{offset(step.start_ns, origin):>7} ")
    line.append(f"{printable(step.step):<{_STEP_WIDTH}}", style="bold")
    tail = Text()
    extra = words.who(step, home)
    if extra:
        tail.append(f"  [{extra}]", style="dim")
    if words.says_error(step):
        tail.append("  ERROR", style="bold red")
    if marks:
        tail.append(f"  ✗ {', '.join(marks).upper()}", style="bold red")
    room = max(8, width - len(line) - len(tail))
    what = words.describe(step)
    line.append(what if len(what) <= room else what[: room - 1] + "…")
    return line + tail


def _block_lines(block: words.Block, indent: int, out: _Out, *, full: bool, index: int) -> None:
    title = Text(block.title, style="bold")
    for label, digest in block.digests:
        title.append(f"  {label} {short(digest)}", style="dim")
    out.line(title, indent)
    for note in block.notes:
        out.line(Text(f"({note})", style="yellow"), indent + 2)
    lines = block.lines
    shown = lines if full or len(lines) <= words.FOLD_LINES else lines[: words.FOLD_LINES - 1]
    for line in shown:
        out.line(Text(line.text, style=_STYLES.get(line.style, "")), indent + 2)
    if len(shown) < len(lines):
        hidden = len(lines) - len(shown)
        out.line(Text(f"… {hidden} more line(s): --full, or --step {index}", style="dim"), indent + 2)


def _body(out: _Out, step: ChainStep, chain: DecisionChain, indent: int, *, full: bool) -> None:
    for text in words.link_lines(step, chain):
        out.line(Text(text, style="cyan"), indent)
    for text, problem in words.observations(step, chain):
        out.line(Text(text, style="bold red" if problem else "dim"), indent)
    for text in words.detail_lines(step):
        out.line(text, indent)
    for block in [*words.blocks(step), *words.server_blocks(step)]:
        _block_lines(block, indent, out, full=full, index=step.index)


def _steps(
    out: _Out, chain: DecisionChain, verdicts: Verdicts, steps: Iterable[ChainStep], options: RenderOptions
) -> None:
    home = chain.decisions[0] if chain.decisions else None
    origin = home.start_ns if home else min((s.start_ns for s in chain.steps), default=0)
    for step in steps:
        indent = 2 * min(step.depth, _MAX_INDENT_LEVELS)
        line = header(step, origin, home, verdicts.marks(step.span_ids), options.width - indent)
        out.line(line, indent, no_wrap=True)
        _body(out, step, chain, indent + 5, full=options.full or options.step is not None)


def render(chain: DecisionChain, verdicts: Verdicts, options: RenderOptions) -> str:
    out = _Out(options)
    _verdicts(out, chain, verdicts)
    out.blank()
    _decisions(out, chain)
    out.blank()
    if options.step is not None:
        step = chain.step_at(options.step)
        if step is None:
            out.line(Text(f"no step #{options.step} in this trace (it has {len(chain.steps)})", "red"))
            return out.text()
        _steps(out, chain, verdicts, [step], options)
        out.blank()
        out.line(Text("Recorded attributes", style="bold"))
        for text in attribute_lines(step):
            out.line(text, 2)
        return out.text()
    calls = sum(1 for s in chain.steps if s.server)
    merged = f"; {calls} call(s) across services, both sides shown as one step" if calls else ""
    out.line(Text(f"Steps ({len(chain.steps)}{merged})", style="bold"))
    _steps(out, chain, verdicts, chain.steps, options)
    out.blank()
    for text in seal_lines(chain):
        out.line(text)
    return out.text()

"""The html report: one self-contained file for the audit folder (inline CSS and SVG, no script,
no font, nothing fetched), with the verdicts, the causal graph, a timeline, every step's content
whole and the seals; violations and integrity findings stand out, and it prints cleanly."""

from __future__ import annotations

import html

from provtrace import __about__
from provtrace import conventions as c
from provtrace.reconstruct import ChainStep, DecisionChain
from provtrace.report import svg, words
from provtrace.report.basics import offset, printable, timestamp
from provtrace.report.options import RenderOptions
from provtrace.report.summary import seal_lines, violation_lines
from provtrace.report.verdicts import Verdicts

_CSS = """
:root{--bad:#b00020;--good:#1f6f3f;--warn:#8a5a00;--line:#d0d0d0}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:78em;
padding:0 1.2em;color:#1a1a1a;line-height:1.4}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;border-bottom:1px solid var(--line);margin-top:1.6em}
h3{font-size:1.02em;margin:.2em 0}h4{font-size:.92em;margin:.6em 0 .2em}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.86em}
.verdicts{border:2px solid var(--good);border-radius:6px;padding:.6em 1em;margin:1em 0}
.verdicts.bad{border-color:var(--bad);background:#fff4f5}
.badge{display:inline-block;font-weight:bold;padding:.15em .6em;border-radius:4px;margin-right:.6em;
color:#fff}
.badge.good{background:var(--good)}.badge.bad{background:var(--bad)}
.finding,.violation{color:var(--bad);font-weight:600}.warning{color:var(--warn)}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em}dl.summary dt{font-weight:600}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid var(--line);padding:.25em .5em;
text-align:left;vertical-align:top;font-size:.9em}
.bar{position:relative;height:.8em;background:#f0f0f0;min-width:12em}
.bar span{position:absolute;top:0;bottom:0;background:#5b7db8;min-width:2px}
.graph{overflow-x:auto;border:1px solid var(--line);padding:.4em}
.step{border:1px solid var(--line);border-radius:6px;padding:.5em .9em;margin:.7em 0;break-inside:avoid-page}
.step.flagged{border:3px solid var(--bad);background:#fff4f5}
.depth-1{margin-left:2em}.depth-2{margin-left:4em}.depth-3{margin-left:6em}.depth-deep{margin-left:8em}
.meta{color:#555;font-size:.9em}.links li{color:#333}.problem{color:var(--bad);font-weight:600}
.note{color:var(--warn);font-style:italic;margin:.1em 0}
pre.content{background:#f7f7f7;border:1px solid #e4e4e4;padding:.5em;max-height:26em;overflow:auto;
white-space:pre-wrap;word-break:break-word;margin:.2em 0}
.add{color:#0b6b2b;background:#e9f7ee}.remove{color:#9b111e;background:#fdecee}.hunk{color:#6b2f8f}
.call{color:#1d4f91}.error{color:var(--bad);font-weight:600}
footer{margin-top:2em;color:#777;font-size:.8em}
@media print{body{max-width:none;margin:0}pre.content{max-height:none;overflow:visible}
.graph{overflow:visible;border:none}.graph svg{max-width:100%;height:auto}
a{color:inherit;text-decoration:none}
h2{break-after:avoid}}
"""


def _e(text: object) -> str:
    return html.escape(printable(str(text)), quote=True)


def _verdicts(chain: DecisionChain, verdicts: Verdicts) -> str:
    good_e = verdicts.complete
    good_i = verdicts.intact
    findings = "".join(
        f"<li class='{'finding' if error else 'warning'}'>{_e(text)}</li>"
        for text, error in verdicts.finding_lines()
    )
    violations = "".join(
        f"<li class='violation'>violation {_e(text)}</li>" for text in violation_lines(chain)
    )
    items = findings + violations
    return (
        f"<section class='verdicts {'good' if good_e and good_i else 'bad'}' id='verdicts'>"
        f"<p><span class='badge {'good' if good_e else 'bad'}' id='verdict-evidence'>Evidence "
        f"{_e(chain.completeness.upper())}</span>"
        f"<span class='badge {'good' if good_i else 'bad'}' id='verdict-integrity'>Integrity "
        f"{_e(verdicts.integrity)}</span></p>"
        f"<p class='meta'>{_e(verdicts.integrity_detail())}</p>"
        + (f"<ul class='findings'>{items}</ul>" if items else "")
        + "</section>"
    )


def _summary(chain: DecisionChain, verdicts: Verdicts) -> str:
    rows = [("trace", f"<code>{_e(chain.trace_id)}</code>"), ("source", _e(verdicts.source))]
    for decision in chain.decisions:
        rows += [
            ("trigger", _e(decision.facts.get(c.DECISION_TRIGGER, "(none)"))),
            ("actor", _e(decision.actor or "(none)")),
            ("identity (NHI)", _e(decision.nhi or "(none)")),
            ("service", _e(decision.service)),
            ("time", f"{_e(timestamp(decision.start_ns))} → {_e(timestamp(decision.end_ns))}"),
        ]
    cells = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return f"<section id='summary'><dl class='summary'>{cells}</dl></section>"


def _timeline(chain: DecisionChain, origin: int, home: ChainStep | None) -> str:
    end = max([s.end_ns for s in chain.steps] + ([home.end_ns] if home else []), default=origin)
    total = max(1, end - origin)
    rows = []
    for step in chain.steps:
        left = 100 * max(0, step.start_ns - origin) / total
        width = max(0.3, 100 * max(0, step.end_ns - step.start_ns) / total)
        rows.append(
            f"<tr><td><a href='#step-{step.index}'>#{step.index}</a></td>"
            f"<td>{_e(offset(step.start_ns, origin))}</td><td>{_e(step.step)}</td>"
            f"<td>{'&nbsp;&nbsp;' * min(step.depth, 8)}{_e(words.describe(step))}</td>"
            f"<td>{_e(words.who(step, home))}</td>"
            f"<td><div class='bar'><span style='left:{left:.2f}%;width:{min(width, 100 - left):.2f}%'></span>"
            "</div></td></tr>"
        )
    return (
        "<section id='timeline'><h2>Timeline</h2><table><tr><th>#</th><th>at</th><th>step</th><th>what</th>"
        "<th>who</th><th>when</th></tr>" + "".join(rows) + "</table></section>"
    )


def _block(block: words.Block) -> str:
    digests = " ".join(
        f"{_e(label)} <code class='digest'>{_e(digest)}</code>" for label, digest in block.digests
    )
    notes = "".join(f"<p class='note'>{_e(note)}</p>" for note in block.notes)
    lines = "\n".join(
        f"<span class='{_e(line.style)}'>{_e(line.text)}</span>" if line.style else _e(line.text)
        for line in block.lines
    )
    content = f"<pre class='content'>{lines}</pre>" if block.lines else ""
    heading = f"<h4>{_e(block.title)} <span class='meta'>{digests}</span></h4>"
    return f"<div class='block'>{heading}{notes}{content}</div>"


def _step(
    step: ChainStep, chain: DecisionChain, verdicts: Verdicts, origin: int, home: ChainStep | None
) -> str:
    marks = verdicts.marks(step.span_ids)
    depth = "" if step.depth == 0 else f" depth-{step.depth}" if step.depth <= 3 else " depth-deep"
    flag = " flagged" if marks else ""
    mark = f" <span class='finding'>✗ {_e(', '.join(marks).upper())}</span>" if marks else ""
    error = " <span class='error'>ERROR</span>" if words.says_error(step) else ""
    who = words.who(step, home)
    items = [f"<li>{_e(text)}</li>" for text in words.link_lines(step, chain)]
    items += [
        f"<li class='{'problem' if problem else ''}'>{_e(text)}</li>"
        for text, problem in words.observations(step, chain)
    ]
    items += [f"<li>{_e(text)}</li>" for text in words.detail_lines(step)]
    blocks = "".join(_block(b) for b in [*words.blocks(step), *words.server_blocks(step)])
    return (
        f"<article class='step{depth}{flag}' id='step-{step.index}'>"
        f"<h3>#{step.index} <span class='meta'>{_e(offset(step.start_ns, origin))}</span> {_e(step.step)}: "
        f"{_e(words.describe(step))}{error}{mark}</h3>"
        f"<p class='meta'>span <code>{_e(step.span_id)}</code>"
        + (f", server span <code>{_e(step.server.span_id)}</code>" if step.server else "")
        + (f" · {_e(who)}" if who else "")
        + f" · {_e(timestamp(step.start_ns))}</p>"
        + (f"<ul class='links'>{''.join(items)}</ul>" if items else "")
        + blocks
        + "</article>"
    )


def _seals(chain: DecisionChain) -> str:
    rows = "".join(
        f"<tr><td>{_e(s.stream)}</td><td>{s.seq}</td><td>{_e(s.completeness)}</td>"
        f"<td><code>{_e(s.digest)}</code></td>"
        f"<td>{_e(s.key_id) if s.signed else '<b class=error>unsigned</b>'}</td>"
        f"<td>{s.covered}</td></tr>"
        for s in chain.seals
    )
    notes = "".join(f"<p class='meta'>{_e(text)}</p>" for text in seal_lines(chain))
    return (
        "<section id='seals'><h2>Seals</h2><table><tr><th>stream</th><th>seq</th><th>completeness</th>"
        f"<th>seal digest</th><th>key</th><th>spans</th></tr>{rows}</table>{notes}</section>"
    )


def render(chain: DecisionChain, verdicts: Verdicts, options: RenderOptions) -> str:
    home = chain.decisions[0] if chain.decisions else None
    origin = home.start_ns if home else min((s.start_ns for s in chain.steps), default=0)
    steps = chain.steps
    if options.step is not None:
        steps = tuple(s for s in chain.steps if s.index == options.step)
    flagged = {s.index for s in chain.steps if verdicts.marks(s.span_ids)}
    names = ", ".join(printable(str(d.facts.get(c.DECISION_NAME, d.name))) for d in chain.decisions)
    title = f"Decision {names}" if names else f"Trace {chain.trace_id}"
    body = (
        f"<h1>{_e(title)}</h1>"
        + _verdicts(chain, verdicts)
        + _summary(chain, verdicts)
        + "<section id='graph'><h2>Causal graph</h2><div class='graph'>"
        + svg.render(chain, flagged)
        + "</div><p class='meta'>Edges: parent (nesting) and the causal links "
        + ", ".join(
            f"<span style='color:{colour}'>{name}</span>" for name, colour in svg.LINK_COLOURS.items()
        )
        + ".</p></section>"
        + _timeline(chain, origin, home)
        + "<section id='steps'><h2>Steps</h2>"
        + "".join(_step(s, chain, verdicts, origin, home) for s in steps)
        + "</section>"
        + _seals(chain)
        + f"<footer>provtrace {_e(__about__.__version__)} · reconstruct {_e(chain.trace_id)}</footer>"
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>\n"
    )

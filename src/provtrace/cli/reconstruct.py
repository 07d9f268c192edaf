"""``provtrace reconstruct TRACE_ID``: the decision chain of one trace, step by step."""

from __future__ import annotations

import argparse
import html

from provtrace import conventions as c
from provtrace.cli.formats import add_format_argument, as_json, html_page, short, timestamp
from provtrace.cli.sources import add_source_arguments, open_source, warn_unreadable
from provtrace.cli.verify import add_key_argument, trusted_keys, verdict, verify_one
from provtrace.errors import InputError
from provtrace.readers.jaeger import check_trace_id
from provtrace.reconstruct import ChainStep, DecisionChain, reconstruct
from provtrace.verify import ERROR, Report

_DIGEST_KEYS = {
    c.INPUT_SHA256: "input",
    c.OUTPUT_SHA256: "output",
    c.ACTION_PARAMS_SHA256: "params",
    c.APPROVAL_PARAMS_SHA256: "params",
    c.CHANGE_BEFORE_SHA256: "before",
    c.CHANGE_AFTER_SHA256: "after",
}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("reconstruct", help="show the decision chain of one trace")
    parser.add_argument("trace_id", metavar="TRACE_ID")
    add_key_argument(parser)
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the integrity check (the chain is then unproven)"
    )
    add_source_arguments(parser)
    add_format_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    trace_id = check_trace_id(args.trace_id)
    keys = None if args.no_verify else trusted_keys(args.public_key)
    source = open_source(args)
    records = source.trace(trace_id)
    warn_unreadable(source)
    if not records:
        raise InputError(f"trace {trace_id} not found in {source.description}")
    chain = reconstruct(trace_id, records)
    report = verify_one(source, trace_id, records, keys) if keys is not None else None
    print(render(chain, args.format, report), end="")
    complete = chain.completeness == c.COMPLETENESS_COMPLETE
    return 0 if complete and (report is None or report.ok) else 1


def integrity_line(report: Report | None) -> str:
    """The integrity verdict next to the completeness verdict (the findings verify would print)."""
    if report is None:
        return "integrity: not checked"
    problems = [f for f in report.findings if f.severity == ERROR]
    if not problems:
        return (
            f"integrity: {verdict(report)} ({report.spans_checked} span(s), {report.seals_checked} seal(s))"
        )
    return f"integrity: {verdict(report)}: " + "; ".join(
        f"{f.kind}" + (f" span {f.span_id}" if f.span_id else "") for f in problems
    )


def render(chain: DecisionChain, fmt: str, report: Report | None = None) -> str:
    if fmt == "json":
        data = chain.as_json()
        data["integrity"] = report.as_json() if report is not None else None
        return as_json(data) + "\n"
    if fmt == "html":
        return _html(chain, integrity_line(report))
    return _text(chain, integrity_line(report), markdown=fmt == "markdown")


def describe(step: ChainStep) -> str:
    """One line that says what the step did, in the investigator's words."""
    f = step.facts
    if step.step == c.STEP_LLM_CALL:
        return f"asked {f.get(c.GEN_AI_PROVIDER_NAME, '?')} model {f.get(c.GEN_AI_REQUEST_MODEL, '?')}"
    if step.step == c.STEP_TOOL_CALL:
        via = f" over MCP ({f[c.MCP_METHOD_NAME]})" if c.MCP_METHOD_NAME in f else ""
        return f"called tool {f.get(c.GEN_AI_TOOL_NAME, '?')}{via}"
    if step.step == c.STEP_SECRET_FETCH:
        version = f" version {f[c.SECRET_VERSION]}" if c.SECRET_VERSION in f else ""
        return f"fetched secret {f.get(c.SECRET_REF, '?')}{version} from {f.get(c.SECRET_STORE, '?')}"
    if step.step == c.STEP_POLICY_CHECK:
        version = f" v{f[c.POLICY_VERSION]}" if c.POLICY_VERSION in f else ""
        engine = f" ({f[c.POLICY_ENGINE]})" if c.POLICY_ENGINE in f else ""
        reason = f": {f[c.POLICY_REASON]}" if c.POLICY_REASON in f else ""
        verdict = f.get(c.POLICY_DECISION, "NO VERDICT")
        return f"policy {f.get(c.POLICY_ID, '?')}{version}{engine} → {verdict}{reason}"
    if step.step == c.STEP_APPROVAL:
        via = f" via {f[c.APPROVAL_METHOD]}" if c.APPROVAL_METHOD in f else ""
        ticket = f" ({f[c.APPROVAL_TICKET]})" if c.APPROVAL_TICKET in f else ""
        reason = f": {f[c.APPROVAL_REASON]}" if c.APPROVAL_REASON in f else ""
        return (
            f"{f.get(c.APPROVAL_APPROVER_ID, '?')}{via}{ticket} → {f.get(c.APPROVAL_DECISION, 'NO VERDICT')}"
            f"{reason}; expires {f.get(c.APPROVAL_EXPIRES_AT, '?')}"
        )
    if step.step == c.STEP_ACTION:
        privileged = " [privileged]" if f.get(c.ACTION_PRIVILEGED) is True else ""
        codes = f.get(c.GUARD_VIOLATIONS, ())
        refused = f" (guard: {', '.join(codes)})" if codes else ""
        return (
            f"{f.get(c.ACTION_TYPE, '?')} on {f.get(c.ACTION_TARGET, '?')}{privileged} → "
            f"{f.get(c.OUTCOME, 'NO OUTCOME')}{refused}"
        )
    if step.step == c.STEP_VERIFICATION:
        method = f" by {f[c.VERIFICATION_METHOD]}" if c.VERIFICATION_METHOD in f else ""
        detail = f": {f[c.VERIFICATION_DETAIL]}" if c.VERIFICATION_DETAIL in f else ""
        return f"verified{method} → {f.get(c.VERIFICATION_RESULT, 'NO RESULT')}{detail}"
    return step.name


def _digests(step: ChainStep) -> str:
    parts = [f"{label} {short(step.facts[key])}" for key, label in _DIGEST_KEYS.items() if key in step.facts]
    return ", ".join(parts)


def _text(chain: DecisionChain, integrity: str, *, markdown: bool) -> str:
    bullet = "- " if markdown else "  "
    heading = "## " if markdown else ""
    out: list[str] = [f"{bullet}{integrity}"]
    for decision in chain.decisions or ():
        out.append(f"{heading}Decision {decision.facts.get(c.DECISION_NAME, decision.name)!r}")
        out.append(f"{bullet}trace {chain.trace_id}, service {decision.service}")
        out.append(f"{bullet}trigger: {decision.facts.get(c.DECISION_TRIGGER, '(none)')}")
        out.append(f"{bullet}actor: {decision.actor or '(none)'}, identity (NHI): {decision.nhi or '(none)'}")
        out.append(f"{bullet}from {timestamp(decision.start_ns)} to {timestamp(decision.end_ns)}")
    if not chain.decisions:
        out.append(f"{heading}Trace {chain.trace_id} (no decision span: a step ran outside any decision)")
    out.append(f"{bullet}evidence: {chain.completeness}; {len(chain.seals)} seal(s)")
    out.append("")
    out.append(f"{heading}Steps" if markdown else "Steps:")
    for step in chain.steps:
        home = chain.decisions[0].service if chain.decisions else ""
        parts = (
            f"actor {step.actor}" if step.actor else "",
            f"as {step.nhi}" if step.nhi else "",
            f"in {step.service}" if step.service and step.service != home else "",
        )
        who = ", ".join(part for part in parts if part)
        line = f"{step.index}. {timestamp(step.start_ns)} {step.step}: {describe(step)}"
        out.append(
            ("" if markdown else "  ")
            + line
            + (f" [{who}]" if who else "")
            + (" ERROR" if step.status == "error" else "")
        )
        digests = _digests(step)
        indent = "   " if markdown else "       "
        if digests:
            out.append(f"{indent}{'- ' if markdown else ''}digests: {digests}")
        for link in step.links:
            target = f"#{link.target_index} {link.target_label}" if link.target_index else link.target_label
            out.append(f"{indent}{'- ' if markdown else ''}{link.link_type} → {target}")
    if chain.violations:
        out.append("")
        out.append(f"{heading}Violations" if markdown else "Violations:")
        for v in chain.violations:
            where = " ".join(
                f"{k}={v[k]}" for k in ("step", "span_id", "attribute", "quarantine_id") if v.get(k)
            )
            out.append(f"{bullet}{v['code']} {where}")
    if chain.other_spans:
        out.append("")
        out.append(f"{chain.other_spans} other span(s) in the trace (not provenance steps)")
    return "\n".join(out) + "\n"


def _html(chain: DecisionChain, integrity: str) -> str:
    rows = []
    for step in chain.steps:
        links = "<br>".join(
            html.escape(f"{link.link_type} → #{link.target_index or '?'} {link.target_label}")
            for link in step.links
        )
        rows.append(
            f"<tr><td>{step.index}</td><td>{html.escape(timestamp(step.start_ns))}</td>"
            f"<td>{html.escape(step.step)}</td><td>{html.escape(describe(step))}</td>"
            f"<td>{html.escape(step.actor)}<br>{html.escape(step.nhi)}</td><td>{links}</td>"
            f"<td><code>{html.escape(_digests(step))}</code></td></tr>"
        )
    title = ", ".join(str(d.facts.get(c.DECISION_NAME, d.name)) for d in chain.decisions) or chain.trace_id
    body = (
        f"<h1>{html.escape(title)}</h1><p>trace <code>{chain.trace_id}</code> — evidence "
        f"<b>{html.escape(chain.completeness)}</b>; {html.escape(integrity)}</p>"
        "<table><tr><th>#</th><th>time</th><th>step</th><th>what</th><th>actor / NHI</th>"
        "<th>links</th><th>digests</th></tr>" + "".join(rows) + "</table>"
    )
    if chain.violations:
        body += (
            "<h2>Violations</h2><ul>"
            + "".join(f"<li class='error'>{html.escape(str(v))}</li>" for v in chain.violations)
            + "</ul>"
        )
    return html_page(title, body)

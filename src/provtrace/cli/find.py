"""``provtrace find``: decisions by change target, NHI, secret reference, action type, policy,
approver, outcome or time range; one line per decision, and how many more matched."""

from __future__ import annotations

import argparse
import html
from typing import Any

from provtrace import conventions as c
from provtrace.cli.formats import add_format_argument, as_json, html_page, parse_time
from provtrace.cli.sources import add_source_arguments, open_source, warn_unreadable
from provtrace.errors import InputError
from provtrace.readers.base import Found, TraceQuery
from provtrace.reconstruct import ChainStep, DecisionChain, reconstruct
from provtrace.report.basics import printable, timestamp

OUTCOMES = (c.OUTCOME_SUCCESS, c.OUTCOME_FAILURE, c.OUTCOME_REFUSED)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "find", help="find decisions by target, NHI, secret, action, policy, approver, outcome or time"
    )
    parser.add_argument("--target", help="change target, e.g. sg-123/rule-9")
    parser.add_argument("--nhi", help="non-human identity, e.g. svc-secops@prod")
    parser.add_argument("--secret-ref", help="secret reference, e.g. kv/fw-api-token")
    parser.add_argument("--action-type", help="action type, e.g. firewall.rule.open")
    parser.add_argument("--policy", dest="policy_id", metavar="POLICY_ID", help="policy id, e.g. fw-change")
    parser.add_argument("--approver", help="approver, e.g. alice@example.com")
    parser.add_argument("--outcome", choices=OUTCOMES, help="outcome of an action")
    parser.add_argument("--service", help="service name (required with --jaeger)")
    parser.add_argument("--since", type=parse_time, help="earliest start, ISO 8601 (e.g. 2026-11-28T10:00Z)")
    parser.add_argument("--until", type=parse_time, help="latest start, ISO 8601")
    parser.add_argument("--limit", type=int, default=20, help="most traces to list (default 20)")
    add_source_arguments(parser)
    add_format_argument(parser)
    parser.set_defaults(run=run)


def _actions_of(decision: ChainStep | None, chain: DecisionChain) -> list[ChainStep]:
    actions = [s for s in chain.steps if s.step == c.STEP_ACTION]
    if decision is None or len(chain.decisions) < 2:
        return actions
    own = decision.attributes.get(c.DECISION_ID)
    return [s for s in actions if s.attributes.get(c.DECISION_ID) == own]


def rows_of(chain: DecisionChain, first_ns: int) -> list[dict[str, Any]]:
    """One row per decision of the trace (one for a trace without a decision span, which starts
    with its first span, ``first_ns``)."""
    decisions: list[ChainStep | None] = list(chain.decisions) or [None]
    rows = []
    for decision in decisions:
        actions = _actions_of(decision, chain)
        first = actions[0] if actions else None
        start = decision.start_ns if decision else first_ns
        rows.append(
            {
                "trace_id": chain.trace_id,
                "start": timestamp(start),
                "decision": str(decision.facts.get(c.DECISION_NAME, decision.name)) if decision else "",
                "action": str(first.facts.get(c.ACTION_TYPE, "")) if first else "",
                "target": str(first.facts.get(c.ACTION_TARGET, "")) if first else "",
                "outcome": str(first.facts.get(c.OUTCOME, "")) if first else "",
                "more_actions": max(0, len(actions) - 1),
                "completeness": chain.completeness,
            }
        )
    return rows


def _verdict(row: dict[str, Any]) -> str:
    if not row["decision"] and row["completeness"] == c.COMPLETENESS_INCOMPLETE:
        return "held in quarantine at the source, evidence incomplete"
    outcome = row["outcome"] or ("no action" if not row["action"] else "no outcome")
    return f"{outcome}, evidence {row['completeness']}"


def _text(rows: list[dict[str, Any]]) -> list[str]:
    cells = [
        [
            row["trace_id"],
            row["start"],
            printable(row["action"] or "-") + (f" (+{row['more_actions']})" if row["more_actions"] else ""),
            printable(row["target"] or "-"),
            _verdict(row),
        ]
        for row in rows
    ]
    widths = [max((len(line[i]) for line in cells), default=0) for i in range(4)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line[:4], widths, strict=True))
        + f"  {line[4]}"
        + (f"  ({printable(row['decision'])})" if row["decision"] else "")
        for line, row in zip(cells, rows, strict=True)
    ]


def summary(found: Found, shown: int, limit: int, description: str) -> str:
    if found.capped:
        beyond = (
            f"{found.more} more matched beyond --limit {limit}, and more may exist (the search was capped)"
        )
    elif found.more:
        beyond = f"{found.more} more matched beyond --limit {limit}"
    else:
        beyond = "no more matched"
    return f"{shown} decision(s) in {len(found.traces)} trace(s); {beyond}; from {description}"


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise InputError("--limit must be at least 1")
    query = TraceQuery(
        target=args.target,
        nhi=args.nhi,
        secret_ref=args.secret_ref,
        action_type=args.action_type,
        service=args.service,
        start_ns=args.since,
        end_ns=args.until,
        limit=args.limit,
        policy_id=args.policy_id,
        approver=args.approver,
        outcome=args.outcome,
    )
    source = open_source(args)
    found = source.traces(query)
    warn_unreadable(source)
    rows = [
        row
        for spans in found.traces
        for row in rows_of(reconstruct(spans[0].trace_id, spans), min(r.start_ns for r in spans))
    ]
    line = summary(found, len(rows), args.limit, source.description)
    if args.format == "json":
        print(
            as_json(
                {
                    "decisions": rows,
                    "more": found.more,
                    "capped": found.capped,
                    "source": source.description,
                }
            )
        )
    elif args.format == "html":
        cells = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(printable(str(v)))}</td>"
                for v in (r["trace_id"], r["start"], r["action"], r["target"], _verdict(r), r["decision"])
            )
            + "</tr>"
            for r in rows
        )
        head = "".join(f"<th>{h}</th>" for h in ("trace", "time", "action", "target", "verdict", "decision"))
        body = f"<table><tr>{head}</tr>{cells}</table><p>{html.escape(line)}</p>"
        print(html_page("provtrace find", body), end="")
    else:
        prefix = "- " if args.format == "markdown" else ""
        for text in _text(rows):
            print(prefix + text)
        print(line)
    return 0 if rows else 1

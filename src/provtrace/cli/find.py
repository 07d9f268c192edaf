"""``provtrace find``: decisions by target, NHI, secret reference, action type or time range."""

from __future__ import annotations

import argparse
import html

from provtrace.cli.formats import add_format_argument, as_json, html_page, parse_time, timestamp
from provtrace.cli.sources import add_source_arguments, open_source, warn_unreadable
from provtrace.errors import InputError
from provtrace.readers.base import TraceQuery
from provtrace.reconstruct import reconstruct


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("find", help="find decisions by target, NHI, secret, action or time")
    parser.add_argument("--target", help="action target, e.g. sg-123/rule-9")
    parser.add_argument("--nhi", help="non-human identity, e.g. svc-secops@prod")
    parser.add_argument("--secret-ref", help="secret reference, e.g. kv/fw-api-token")
    parser.add_argument("--action-type", help="action type, e.g. firewall.rule.open")
    parser.add_argument("--service", help="service name (required with --jaeger)")
    parser.add_argument("--since", type=parse_time, help="earliest start, ISO 8601 (e.g. 2026-11-28T10:00Z)")
    parser.add_argument("--until", type=parse_time, help="latest start, ISO 8601")
    parser.add_argument("--limit", type=int, default=20, help="most traces to list (default 20)")
    add_source_arguments(parser)
    add_format_argument(parser)
    parser.set_defaults(run=run)


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
    )
    rows = []
    source = open_source(args)
    found = source.traces(query)
    warn_unreadable(source)
    for spans in found:
        chain = reconstruct(spans[0].trace_id, spans)
        names = (
            ", ".join(str(d.facts.get("provenance.decision.name", d.name)) for d in chain.decisions)
            or "(no decision)"
        )
        rows.append(
            {
                "trace_id": chain.trace_id,
                "start": timestamp(min(r.start_ns for r in spans)),
                "decision": names,
                "completeness": chain.completeness,
                "actions": [s.facts.get("provenance.action.type") for s in chain.steps if s.step == "action"],
            }
        )
    if args.format == "json":
        print(as_json(rows))
    elif args.format == "html":
        cells = "".join(
            f"<tr><td><code>{r['trace_id']}</code></td><td>{r['start']}</td><td>{html.escape(str(r['decision']))}</td>"
            f"<td>{r['completeness']}</td></tr>"
            for r in rows
        )
        print(html_page("provtrace find", f"<table>{cells}</table>"), end="")
    else:
        for r in rows:
            print(f"{r['trace_id']}  {r['start']}  {r['completeness']:<10}  {r['decision']}")
    return 0 if rows else 1

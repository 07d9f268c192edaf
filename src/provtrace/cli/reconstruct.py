"""``provtrace reconstruct TRACE_ID``: the decision chain of one trace, step by step, with what
each step saw and changed, and whether the evidence is complete and intact."""

from __future__ import annotations

import argparse
import os
import sys

from provtrace.cli.formats import add_format_argument
from provtrace.cli.sources import add_source_arguments, open_source, read_trace
from provtrace.cli.verify import add_key_argument, trusted_keys, verdict, verify_one
from provtrace.errors import InputError
from provtrace.readers.jaeger import check_trace_id
from provtrace.reconstruct import DecisionChain, reconstruct
from provtrace.report import RenderOptions, Verdicts
from provtrace.report import render as render_report
from provtrace.report.options import DEFAULT_WIDTH
from provtrace.verify import Report


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("reconstruct", help="show the decision chain of one trace")
    parser.add_argument("trace_id", metavar="TRACE_ID")
    add_key_argument(parser)
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the integrity check (the chain is then unproven)"
    )
    parser.add_argument("--full", action="store_true", help="show long content whole instead of folded")
    parser.add_argument(
        "--step", metavar="N", type=_positive, help="show only step N, whole, with every recorded attribute"
    )
    parser.add_argument(
        "--width",
        metavar="COLUMNS",
        type=_positive,
        help=f"text width (default: the terminal's, else {DEFAULT_WIDTH})",
    )
    add_source_arguments(parser)
    add_format_argument(parser)
    parser.set_defaults(run=run)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _options(args: argparse.Namespace) -> RenderOptions:
    tty = sys.stdout.isatty()
    width = args.width or (os.get_terminal_size().columns if tty else DEFAULT_WIDTH)
    return RenderOptions(
        full=args.full, step=args.step, width=max(40, width), color=tty and not os.environ.get("NO_COLOR")
    )


def run(args: argparse.Namespace) -> int:
    trace_id = check_trace_id(args.trace_id)
    keys = None if args.no_verify else trusted_keys(args.public_key)
    source = open_source(args)
    records = read_trace(source, trace_id)
    chain = reconstruct(trace_id, records)
    if args.step is not None and chain.step_at(args.step) is None:
        raise InputError(f"trace {trace_id} has no step #{args.step} (it has {len(chain.steps)} steps)")
    report = verify_one(source, trace_id, records, keys) if keys is not None else None
    verdicts = Verdicts.of(chain, report, verdict(report) if report else "", source.description)
    print(render_report(chain, args.format, verdicts, _options(args)), end="")
    return 0 if verdicts.complete and (report is None or report.ok) else 1


def render(chain: DecisionChain, fmt: str, report: Report | None = None, source: str = "") -> str:
    """The report of a chain read from elsewhere (a quarantine entry: its integrity is checked
    once it is released and read back from the archive or Jaeger)."""
    why = "not checked here: a quarantined segment is verified once released and read back"
    verdicts = Verdicts.of(chain, report, verdict(report) if report else "", source, unchecked_because=why)
    return render_report(chain, fmt, verdicts, RenderOptions())

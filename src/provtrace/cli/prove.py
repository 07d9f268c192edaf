"""``provtrace prove SPAN_ID``: an inclusion proof of one span that an auditor checks offline,
with ``provtrace verify --proof FILE --public-key K`` (no archive needed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from provtrace.cli.sources import add_source_arguments, open_source
from provtrace.cli.verify import read_checkpoint
from provtrace.errors import InputError
from provtrace.proofs import ProofError, dump_bundle, make_bundle
from provtrace.readers.archive import ArchiveSource
from provtrace.readers.jaeger import check_trace_id


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("prove", help="write an offline inclusion proof of one span")
    parser.add_argument("span_id", metavar="SPAN_ID")
    parser.add_argument("--trace", metavar="TRACE_ID", help="the span's trace, when its id is not unique")
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="prove against this checkpoint (one you kept) instead of the stream's latest",
    )
    parser.add_argument("--out", metavar="FILE", help="where to write the bundle (default: standard output)")
    add_source_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    span_id = args.span_id.lower()
    if len(span_id) != 16 or any(ch not in "0123456789abcdef" for ch in span_id):
        raise InputError(f"{args.span_id!r} is not a span id (16 hex digits)")
    source = open_source(args)
    if not isinstance(source, ArchiveSource):
        raise InputError("prove rebuilds the stream's log from the archive: use --archive DIR")
    kept = read_checkpoint(args.checkpoint) if args.checkpoint else None
    trace_id = check_trace_id(args.trace) if args.trace else None
    try:
        bundle = make_bundle(list(source.all_spans()), span_id, trace_id=trace_id, kept=kept)
    except ProofError as exc:
        print(f"provtrace: {exc.kind}: {exc}", file=sys.stderr)
        return 1
    data = dump_bundle(bundle)
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"wrote the inclusion proof of span {span_id} (entry {bundle['leaf_index']} of "
              f"{bundle['tree_size']}) to {args.out}")  # fmt: skip
    else:
        sys.stdout.write(data.decode())
    return 0

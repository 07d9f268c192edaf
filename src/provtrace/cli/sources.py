"""``--jaeger URL`` or ``--archive DIR``: where the CLI reads evidence from."""

from __future__ import annotations

import argparse
import math
import sys

from provtrace.fetch import DEFAULT_DEADLINE_S
from provtrace.readers.archive import ArchiveSource
from provtrace.readers.base import EvidenceSource
from provtrace.readers.jaeger import JaegerSource

DEFAULT_JAEGER = "http://localhost:16686"


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--jaeger", metavar="URL", help=f"Jaeger query service (default {DEFAULT_JAEGER})")
    group.add_argument("--archive", metavar="DIR", help="archive directory of OTLP JSON-lines files")
    parser.add_argument(
        "--jaeger-api",
        choices=("v3", "v1"),
        default="v3",
        help="which Jaeger query API to read (default v3; v1 is the UI's API)",
    )
    parser.add_argument(
        "--jaeger-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_DEADLINE_S,
        help=f"total time allowed for each Jaeger request (default {DEFAULT_DEADLINE_S:g})",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def warn_unreadable(source: EvidenceSource) -> None:
    """Archive lines that could not be read were skipped: say so on stderr."""
    for problem in getattr(source, "unreadable", ()):
        print(f"provtrace: warning: skipped {problem}", file=sys.stderr)


def open_source(args: argparse.Namespace) -> EvidenceSource:
    if args.archive:
        return ArchiveSource(args.archive)
    return JaegerSource(args.jaeger or DEFAULT_JAEGER, api=args.jaeger_api, timeout_s=args.jaeger_timeout)

"""``--jaeger URL`` or ``--archive DIR``: where the CLI reads evidence from."""

from __future__ import annotations

import argparse
import sys

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


def warn_unreadable(source: EvidenceSource) -> None:
    """Archive lines that could not be read were skipped: say so on stderr."""
    for problem in getattr(source, "unreadable", ()):
        print(f"provtrace: warning: skipped {problem}", file=sys.stderr)


def open_source(args: argparse.Namespace) -> EvidenceSource:
    if args.archive:
        return ArchiveSource(args.archive)
    return JaegerSource(args.jaeger or DEFAULT_JAEGER, api=args.jaeger_api)

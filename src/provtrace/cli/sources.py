"""``--jaeger URL`` or ``--archive DIR``: where the CLI reads evidence from. With neither, the
archive provtrace is configured to write ($PROVTRACE_ARCHIVE_DIR, else $PROVTRACE_HOME/archive),
and every output names the source it read."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from provtrace.config import default_home
from provtrace.errors import InputError
from provtrace.fetch import DEFAULT_DEADLINE_S
from provtrace.model import SpanRecord
from provtrace.readers.archive import ArchiveSource
from provtrace.readers.base import EvidenceSource
from provtrace.readers.jaeger import JaegerSource

ARCHIVE_ENV = "PROVTRACE_ARCHIVE_DIR"


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--jaeger", metavar="URL", help="Jaeger query service, e.g. http://127.0.0.1:16686")
    group.add_argument(
        "--archive",
        metavar="DIR",
        help=f"archive directory of OTLP JSON-lines files (default: ${ARCHIVE_ENV}, else "
        "$PROVTRACE_HOME/archive)",
    )
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


def read_trace(source: EvidenceSource, trace_id: str) -> list[SpanRecord]:
    """Every span of one trace; a trace that is not there is one error line, which also says how
    many lines of the archive could not be read (they may have held it)."""
    records = source.trace(trace_id)
    if records:
        warn_unreadable(source)
        return records
    skipped = list(getattr(source, "unreadable", ()))
    hint = f" ({len(skipped)} unreadable line(s) skipped, first {skipped[0]})" if skipped else ""
    raise InputError(f"trace {trace_id} not found in {source.description}{hint}")


def warn_unreadable(source: EvidenceSource) -> None:
    """Archive lines that could not be read were skipped: say so on stderr."""
    for problem in getattr(source, "unreadable", ()):
        print(f"provtrace: warning: skipped {problem}", file=sys.stderr)


def configured_archive() -> tuple[Path, str]:
    """The archive directory provtrace writes by configuration, and where that came from."""
    explicit = os.environ.get(ARCHIVE_ENV)
    if explicit:
        return Path(explicit), f"from ${ARCHIVE_ENV}"
    if os.environ.get("PROVTRACE_HOME"):
        return default_home() / "archive", "from $PROVTRACE_HOME"
    return default_home() / "archive", "provtrace's default archive"


def open_source(args: argparse.Namespace) -> EvidenceSource:
    if args.archive:
        return ArchiveSource(args.archive)
    if args.jaeger:
        return JaegerSource(args.jaeger, api=args.jaeger_api, timeout_s=args.jaeger_timeout)
    directory, how = configured_archive()
    if not directory.is_dir():
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        sent = f"; provtrace sends evidence to {endpoint} here" if endpoint else ""
        raise InputError(
            f"no --jaeger URL or --archive DIR given, and the configured archive {directory} ({how}) "
            f"does not exist{sent}: name the source with --jaeger URL or --archive DIR"
        )
    source = ArchiveSource(directory)
    source.description = f"archive {directory} ({how})"
    return source

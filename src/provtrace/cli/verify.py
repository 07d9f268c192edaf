"""``provtrace verify [TRACE_ID] [--stream]``: prove a trace (or a whole stream) is complete and
unaltered, or name exactly what is wrong."""

from __future__ import annotations

import argparse
import html
import os
import time

from provtrace.cli.formats import add_format_argument, as_json, html_page, parse_time
from provtrace.cli.sources import add_source_arguments, open_source
from provtrace.errors import InputError
from provtrace.integrity import key_id_of, load_public_key
from provtrace.model import SpanRecord
from provtrace.readers.archive import ArchiveSource
from provtrace.readers.base import EvidenceSource
from provtrace.readers.jaeger import JaegerSource, check_trace_id, interpretations
from provtrace.verify import (
    CONFLICTING_COPY,
    ERROR,
    INFO,
    PARTIAL,
    SIGNATURES_UNCHECKED,
    UNREADABLE_LINE,
    Keys,
    Readings,
    Report,
    exact,
    verify_stream,
    verify_trace,
)

PUBLIC_KEY_ENV = "PROVTRACE_PUBLIC_KEY"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("verify", help="check digests, seals, signatures and the chain")
    parser.add_argument("trace_id", metavar="TRACE_ID", nargs="?")
    parser.add_argument("--stream", action="store_true", help="verify every stream in the archive")
    parser.add_argument(
        "--in-toto", metavar="FILE", help="verify an in-toto attestation from provtrace export"
    )
    add_key_argument(parser)
    parser.add_argument(
        "--as-of",
        metavar="TIME",
        type=parse_time,
        help="judge stream tails as of this ISO 8601 time (default: now), e.g. when the archive was copied",
    )
    add_source_arguments(parser)
    add_format_argument(parser)
    parser.set_defaults(run=run)


def add_key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--public-key",
        metavar="FILE",
        action="append",
        default=[],
        help=f"trusted Ed25519 public key (PEM); repeat for several (default ${PUBLIC_KEY_ENV})",
    )


def trusted_keys(paths: list[str]) -> Keys:
    """The keys given with --public-key, else those named in $PROVTRACE_PUBLIC_KEY."""
    if not paths:
        paths = [p for p in os.environ.get(PUBLIC_KEY_ENV, "").split(os.pathsep) if p]
    keys = {}
    for path in paths:
        key = load_public_key(path)
        keys[key_id_of(key)] = key
    return Keys(keys, bool(paths))


def readings_of(source: EvidenceSource) -> Readings:
    return interpretations if isinstance(source, JaegerSource) and source.api == "v1" else exact


def verify_one(source: EvidenceSource, trace_id: str, records: list[SpanRecord], keys: Keys) -> Report:
    """Every check that one trace allows (reconstruct runs the same)."""
    report = verify_trace(trace_id, records, keys, readings=readings_of(source))
    report.add(
        PARTIAL,
        INFO,
        "checked this trace's spans and seals; whether a whole segment of it (spans and seal) "
        "is missing shows only in the stream: verify --stream --archive DIR",
        trace_id=trace_id,
    )
    if isinstance(source, ArchiveSource):
        _conflicts(source, report, trace_id=trace_id)
    return report.finish(keys)


def run(args: argparse.Namespace) -> int:
    if args.in_toto:
        from provtrace.cli import attestation

        return attestation.run(args, trusted_keys(args.public_key))
    if bool(args.trace_id) == bool(args.stream):
        raise InputError("give either a TRACE_ID or --stream")
    keys = trusted_keys(args.public_key)
    source = open_source(args)
    if args.stream:
        if not isinstance(source, ArchiveSource):
            raise InputError("verify --stream reads the archive: use --archive DIR")
        records = list(source.all_spans())
        order = [r.span_id for _, _, line in source.lines for r in line if r.is_seal]
        now = args.as_of if args.as_of is not None else time.time_ns()
        report = verify_stream(records, keys, now_ns=now, order=order, readings=readings_of(source))
        _conflicts(source, report)
        report.finish(keys)
    else:
        trace_id = check_trace_id(args.trace_id)
        records = source.trace(trace_id)
        if not records:
            raise InputError(f"trace {trace_id} not found in {source.description}")
        report = verify_one(source, trace_id, records, keys)
    print(render(report, args.format, source.description), end="")
    return 0 if report.ok else 1


def verdict(report: Report) -> str:
    """VERIFIED only when everything was checked against a trusted key and held."""
    if report.ok:
        return "VERIFIED"
    if all(f.kind == SIGNATURES_UNCHECKED for f in report.findings if f.severity == ERROR):
        return "NOT VERIFIED"
    return "FAILED"


def _conflicts(source: ArchiveSource, report: Report, *, trace_id: str | None = None) -> None:
    for problem in source.unreadable:
        report.add(UNREADABLE_LINE, ERROR, problem)
    for first, _ in source.conflicts:
        if trace_id is None or first.trace_id == trace_id:
            report.add(
                CONFLICTING_COPY,
                ERROR,
                f"span {first.span_id} is stored twice with different content",
                trace_id=first.trace_id,
                span_id=first.span_id,
            )


def render(report: Report, fmt: str, description: str) -> str:
    if fmt == "json":
        return as_json(report.as_json()) + "\n"
    summary = (
        f"{verdict(report)}: {report.spans_checked} span(s), {report.seals_checked} seal(s)"
        + (f", {report.streams_checked} stream(s)" if report.streams_checked else "")
        + f" from {description}"
    )
    if fmt == "html":
        items = "".join(
            f"<li class='{'error' if f.severity == ERROR else ''}'>{html.escape(f.severity)} "
            f"{html.escape(f.kind)}: {html.escape(f.message)}</li>"
            for f in report.findings
        )
        return html_page(
            verdict(report),
            f"<h1 class='{'ok' if report.ok else 'error'}'>{html.escape(summary)}</h1><ul>{items}</ul>",
        )
    bullet = "- " if fmt == "markdown" else "  "
    lines = [summary]
    for finding in report.findings:
        where = " ".join(
            part
            for part in (
                f"trace={finding.trace_id}" if finding.trace_id else "",
                f"span={finding.span_id}" if finding.span_id else "",
                f"stream={finding.stream}" if finding.stream else "",
            )
            if part
        )
        lines.append(
            f"{bullet}{finding.severity.upper()} {finding.kind}: {finding.message}"
            + (f" ({where})" if where else "")
        )
    return "\n".join(lines) + "\n"

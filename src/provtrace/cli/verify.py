"""``provtrace verify [TRACE_ID] [--stream] [--proof FILE] [--consistency OLD NEW]``: prove a
trace (or a whole stream) is complete and unaltered, check an offline inclusion proof or the
growth between two checkpoints, or name exactly what is wrong."""

from __future__ import annotations

import argparse
import html
import os
import time
from pathlib import Path

from provtrace.checkpoint import SignedCheckpoint, parse_note
from provtrace.cli.formats import add_format_argument, as_json, html_page, parse_time
from provtrace.cli.sources import add_source_arguments, open_source
from provtrace.errors import InputError
from provtrace.keyring import Keys, TrustedKey, load_trusted
from provtrace.model import SpanRecord
from provtrace.proofs import (
    ProofError,
    check_consistency,
    read_bundle,
    seal_streams,
    stream_leaves,
    verify_bundle,
)
from provtrace.readers.archive import ArchiveSource
from provtrace.readers.base import EvidenceSource
from provtrace.readers.jaeger import JaegerSource, check_trace_id, interpretations
from provtrace.recovery import dead_spools
from provtrace.report.basics import printable
from provtrace.scan import scan_files
from provtrace.timestamp import load_tsa_roots
from provtrace.verify import (
    CONFLICTING_COPY,
    DUPLICATE_COPIES,
    ERROR,
    INFO,
    PARTIAL,
    SIGNATURES_UNCHECKED,
    TIME_WARNINGS,
    UNFINISHED_DECISION,
    UNREADABLE_LINE,
    Readings,
    Report,
    check_seal,
    exact,
    verify_trace,
)
from provtrace.verify_streams import verify_scanned

PUBLIC_KEY_ENV = "PROVTRACE_PUBLIC_KEY"
TSA_CERT_ENV = "PROVTRACE_TSA_CERT"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("verify", help="check digests, seals, signatures and the chain")
    parser.add_argument("trace_id", metavar="TRACE_ID", nargs="?")
    parser.add_argument("--stream", action="store_true", help="verify every stream in the archive")
    parser.add_argument(
        "--in-toto", metavar="FILE", help="verify an in-toto attestation from provtrace export"
    )
    parser.add_argument("--proof", metavar="FILE", help="check an inclusion proof bundle (no archive needed)")
    parser.add_argument(
        "--consistency",
        nargs=2,
        metavar=("OLD", "NEW"),
        help="check that checkpoint NEW extends checkpoint OLD (a proof computed from the archive)",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        action="append",
        default=[],
        help="with --stream: a checkpoint you kept earlier, which the archive must extend (repeatable)",
    )
    parser.add_argument(
        "--spool",
        metavar="DIR",
        help="with --stream, on the agent's host: the agent's spool directory, whose progress "
        "logs show streams that died and decisions not yet recovered by a restart",
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
        help=f"trusted Ed25519 public key (PEM) or keyring (JSON); repeatable (default ${PUBLIC_KEY_ENV})",
    )
    parser.add_argument(
        "--tsa-cert",
        metavar="FILE",
        action="append",
        default=[],
        help=f"trusted time-stamping authority root certificate (PEM); repeatable (default ${TSA_CERT_ENV})",
    )


def _paths(given: list[str], env: str) -> list[str]:
    return given or [p for p in os.environ.get(env, "").split(os.pathsep) if p]


def trusted_keys(paths: list[str], tsa_certs: list[str] | None = None) -> Keys:
    """The keys given with --public-key (PEM keys or keyrings), else those named in
    $PROVTRACE_PUBLIC_KEY; and the TSA roots of --tsa-cert, else $PROVTRACE_TSA_CERT."""
    paths = _paths(paths, PUBLIC_KEY_ENV)
    keys: list[TrustedKey] = []
    for path in paths:
        keys.extend(load_trusted(path))
    roots = load_tsa_roots(_paths(tsa_certs or [], TSA_CERT_ENV))
    return Keys.of(keys, given=bool(paths), tsa_roots=roots)


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


def read_checkpoint(path: str) -> SignedCheckpoint:
    try:
        return parse_note(Path(path).read_bytes().decode("utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"checkpoint {path} is not UTF-8 text") from None


def _token_beside(path: str) -> bytes | None:
    """The RFC 3161 reply stored beside a checkpoint file (``<seq>.tsr``), if any."""
    beside = Path(path).with_suffix(".tsr")
    return beside.read_bytes() if beside.is_file() else None


def run(args: argparse.Namespace) -> int:
    if args.in_toto:
        from provtrace.cli import attestation

        return attestation.run(args, trusted_keys(args.public_key))
    modes = [bool(args.trace_id), bool(args.stream), bool(args.proof), bool(args.consistency)]
    if sum(modes) != 1:
        raise InputError("give one of TRACE_ID, --stream, --proof FILE or --consistency OLD NEW")
    if args.checkpoint and not args.stream:
        raise InputError("--checkpoint goes with --stream")
    keys = trusted_keys(args.public_key, args.tsa_cert)
    if args.proof:
        return _run_proof(args, keys)
    source = open_source(args)
    if args.consistency:
        return _run_consistency(args, keys, source)
    if args.stream:
        if not isinstance(source, ArchiveSource):
            raise InputError("verify --stream reads the archive: use --archive DIR")
        kept = [read_checkpoint(path) for path in args.checkpoint]
        now = args.as_of if args.as_of is not None else time.time_ns()
        report = Report()
        report.signature_checks(keys, parallel=True)  # signatures on a second core while reading
        checked: dict[str, bool] = {}
        scan = scan_files(
            source.files(),
            on_seal=lambda seal: checked.setdefault(seal.span_id, check_seal(seal, keys, report)),
        )
        dead = _unrecovered(Path(args.spool), report) if args.spool else {}
        verify_scanned(
            scan.entries,
            scan.records,
            keys,
            now_ns=now,
            order=scan.order,
            kept=kept,
            report=report,
            checked=checked,
            timed=scan.timed,
            dead=dead,
        )
        for problem in scan.unreadable:
            report.add(UNREADABLE_LINE, ERROR, problem)
        if scan.duplicates:
            _duplicates(report, scan.duplicates)
        for trace_id, span_id in scan.conflicts:
            report.add(
                CONFLICTING_COPY,
                ERROR,
                f"span {span_id} is stored twice with different content",
                trace_id=trace_id,
                span_id=span_id,
            )
        report.finish(keys)
    else:
        trace_id = check_trace_id(args.trace_id)
        records = source.trace(trace_id)
        if not records:
            raise InputError(f"trace {trace_id} not found in {source.description}")
        report = verify_one(source, trace_id, records, keys)
        if isinstance(source, JaegerSource) and source.duplicates:
            _duplicates(report, source.duplicates)
    print(render(report, args.format, source.description), end="")
    return 0 if report.ok else 1


def _unrecovered(spool: Path, report: Report) -> dict[str, str]:
    """Dead streams and their unfinished decisions from the progress logs in a spool directory
    that no restarted agent has recovered yet."""
    if not spool.is_dir():
        raise InputError(f"spool directory {spool} does not exist or is not a directory")
    dead: dict[str, str] = {}
    for recovery in dead_spools(spool):
        held = f"{recovery.spans} span(s) that were never spooled"
        dead[recovery.stream] = (
            f"its progress log in {spool} holds {held}, not yet recovered (the next start of the "
            "agent on that spool seals them)"
        )
        for decision in recovery.decisions:
            if not decision.finished:
                report.add(
                    UNFINISHED_DECISION,
                    ERROR,
                    f"decision {decision.trace_id} of stream {recovery.stream} started and never "
                    f"finished (the process died); {decision.recovered_spans} finished span(s) are "
                    f"in its progress log, not yet sealed; last step recorded: {decision.last_step}",
                    trace_id=decision.trace_id,
                    stream=recovery.stream,
                )
    return dead


def _duplicates(report: Report, count: int) -> None:
    report.add(
        DUPLICATE_COPIES,
        INFO,
        f"{count} exact duplicate cop{'y' if count == 1 else 'ies'} of spans ignored: delivery is at "
        "least once (a process killed between sending a batch and recording that it did sends it again)",
    )


def _run_proof(args: argparse.Namespace, keys: Keys) -> int:
    try:
        data = Path(args.proof).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read proof bundle {args.proof}: {exc.strerror}") from None
    report, facts = verify_bundle(read_bundle(data), keys)
    report.finish(keys)
    if report.ok:
        report.add(
            "proven",
            INFO,
            f"span {facts['span_id']} ({facts['name']}) of trace {facts['trace_id']} is entry "
            f"{facts['leaf_index']} of the log {facts['origin']} at size {facts['tree_size']}",
        )
    print(render(report, args.format, f"proof {args.proof}"), end="")
    return 0 if report.ok else 1


def _run_consistency(args: argparse.Namespace, keys: Keys, source: EvidenceSource) -> int:
    old_path, new_path = args.consistency
    old, new = read_checkpoint(old_path), read_checkpoint(new_path)
    streams: dict[str, list[SpanRecord]] | None = None

    def leaves_of(origin: str) -> list[bytes] | None:
        nonlocal streams
        if not isinstance(source, ArchiveSource):
            raise InputError("verify --consistency computes the proof from the archive: use --archive DIR")
        from provtrace.checkpoint import origin_of

        streams = streams if streams is not None else seal_streams(source.all_spans())
        stream = next((s for s in streams if origin_of(s) == origin), None)
        if stream is None:
            return None
        try:
            return stream_leaves(streams[stream], stream)[0]
        except ProofError:
            return None

    report, proof = check_consistency(
        old, new, leaves_of, keys, tokens=(_token_beside(old_path), _token_beside(new_path))
    )
    report.finish(keys)
    if report.ok:
        sizes = sorted((old.checkpoint.size, new.checkpoint.size))
        hashes = ", ".join(h.hex()[:12] for h in proof) or "none needed"
        report.add(
            "consistent",
            INFO,
            f"the log at size {sizes[1]} extends the log at size {sizes[0]} "
            f"({len(proof)}-hash consistency proof: {hashes})",
        )
    print(render(report, args.format, source.description), end="")
    return 0 if report.ok else 1


def verdict(report: Report) -> str:
    """VERIFIED only when everything was checked against a trusted key and held; qualified when
    the content held but the agent's clock did not (its times are then not evidence)."""
    if report.ok:
        untimed = any(f.kind in TIME_WARNINGS for f in report.findings)
        return "VERIFIED (times not trusted)" if untimed else "VERIFIED"
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
        # Findings quote evidence (stream names, step names): control characters stay escaped.
        lines.append(
            printable(
                f"{bullet}{finding.severity.upper()} {finding.kind}: {finding.message}"
                + (f" ({where})" if where else "")
            )
        )
    return "\n".join(lines) + "\n"

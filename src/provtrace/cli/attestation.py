"""``provtrace verify --in-toto FILE``: check an exported attestation's DSSE signature against
the trusted keys and its statement's shape; with --jaeger or --archive, also that the seals it
attests are the trace's seals in that evidence, and the evidence itself."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from provtrace import conventions as c
from provtrace.attest import MAX_ENVELOPE_BYTES, EnvelopeCheck, check_envelope, compare_seals
from provtrace.cli.formats import as_json
from provtrace.cli.sources import open_source, read_trace
from provtrace.errors import InputError
from provtrace.readers.jaeger import check_trace_id
from provtrace.reconstruct import reconstruct
from provtrace.verify import INFO, Keys


def _read(path: str) -> bytes:
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_ENVELOPE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise InputError(f"{path} is larger than {MAX_ENVELOPE_BYTES} bytes: not an attestation")
    return raw


def _against_evidence(check: EnvelopeCheck, args: argparse.Namespace, keys: Keys) -> str:
    from provtrace.cli.verify import verify_one

    if not (args.archive or args.jaeger):
        check.report.add(
            "evidence_not_compared",
            INFO,
            "the attested seals were not compared with the evidence: add --archive DIR or --jaeger URL",
        )
        return ""
    source = open_source(args)
    trace_id = check_trace_id(check.trace_id)
    records = read_trace(source, trace_id)
    compare_seals(check, reconstruct(trace_id, records))
    evidence = verify_one(source, trace_id, records, keys)
    check.report.findings.extend(evidence.findings)
    check.report.spans_checked += evidence.spans_checked
    check.report.seals_checked += evidence.seals_checked
    return source.description


def run(args: argparse.Namespace, keys: Keys) -> int:
    check = check_envelope(_read(args.in_toto), keys)
    compared = _against_evidence(check, args, keys) if check.statement is not None else ""
    report = check.report
    if args.format == "json":
        data = {**report.as_json(), "signed_by": check.signed_by, "subjects": check.subjects}
        print(as_json(data))
        return 0 if report.ok else 1
    head = "VERIFIED" if report.ok else "FAILED"
    predicate = (check.statement or {}).get("predicate") or {}
    facts = [f"{len(check.subjects)} seal(s) of trace {check.trace_id or '?'}"]
    if check.signed_by:
        facts.append(f"signed by {', '.join(check.signed_by)}")
    if compared:
        facts.append(f"compared with {compared}")
    if isinstance(predicate, dict) and predicate.get("completeness"):
        facts.append(
            f"attested as evidence {predicate.get('completeness')}, integrity {predicate.get('integrity')}"
        )
    print(f"{head}: in-toto statement, " + "; ".join(str(f) for f in facts))
    for finding in report.findings:
        if finding.severity != INFO or finding.kind == "evidence_not_compared":
            print(f"  {finding.severity.upper()} {finding.kind}: {finding.message}")
    if report.ok and predicate.get("completeness") != c.COMPLETENESS_COMPLETE:
        print("  the attestation is intact, but it attests evidence that was not complete", file=sys.stderr)
    return 0 if report.ok else 1

"""``provtrace export TRACE_ID --format in-toto|prov``: the decision chain for the tools that read
the provenance standards: a signed in-toto attestation (DSSE) or W3C PROV-JSON."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from provtrace.attest import envelope, statement
from provtrace.cli.formats import as_json
from provtrace.cli.sources import add_source_arguments, open_source, read_trace
from provtrace.cli.verify import add_key_argument, trusted_keys, verdict, verify_one
from provtrace.errors import InputError
from provtrace.integrity import load_private_key
from provtrace.provjson import document
from provtrace.readers.jaeger import check_trace_id
from provtrace.reconstruct import reconstruct
from provtrace.report.verdicts import Verdicts

SIGNING_KEY_ENV = "PROVTRACE_SIGNING_KEY"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "export", help="export a decision chain as in-toto (signed) or W3C PROV-JSON"
    )
    parser.add_argument("trace_id", metavar="TRACE_ID")
    parser.add_argument("--format", choices=("in-toto", "prov"), required=True, help="what to export")
    parser.add_argument(
        "--signing-key",
        metavar="FILE",
        help=f"Ed25519 private key that signs the in-toto envelope (default ${SIGNING_KEY_ENV})",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write here instead of standard output")
    add_key_argument(parser)
    add_source_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the export was written and the evidence verified complete and intact; 1 when
    it was written but the evidence is not (the statement says so: it is signed as found)."""
    trace_id = check_trace_id(args.trace_id)
    key_path = args.signing_key or os.environ.get(SIGNING_KEY_ENV)
    if args.format == "in-toto" and not key_path:
        raise InputError(f"an in-toto export is signed: give --signing-key FILE or set ${SIGNING_KEY_ENV}")
    key = load_private_key(key_path) if args.format == "in-toto" and key_path else None
    keys = trusted_keys(args.public_key)
    source = open_source(args)
    records = read_trace(source, trace_id)
    chain = reconstruct(trace_id, records)
    report = verify_one(source, trace_id, records, keys)
    verdicts = Verdicts.of(chain, report, verdict(report), source.description)
    if key is not None:
        if not chain.seals:
            raise InputError(
                f"trace {trace_id} has no seal to attest: an in-toto statement needs one subject"
            )
        data = envelope(statement(chain, verdicts), key)
    else:
        data = document(chain)
    text = as_json(data) + "\n"
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {args.output}: {exc.strerror}") from exc
    else:
        sys.stdout.write(text)
    if not verdicts.ok:
        print(
            f"provtrace: exported as found: evidence {chain.completeness}, integrity {verdicts.integrity}",
            file=sys.stderr,
        )
    return 0 if verdicts.ok else 1

"""``provtrace digest FILE``: the digest provtrace records for a JSON document, to prove content.

An investigator holding original content (a tool's arguments, a model's answer, an action's
parameters) recomputes its digest and compares it with the span's. Content that held a fetched
secret was digested with the evidence owner's digest key (``provenance.content.keyed``): give that
key with ``--digest-key`` to compute the keyed digest too.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
from pathlib import Path

from provtrace.content import canonical_json, to_jsonable
from provtrace.errors import InputError, KeyFileError
from provtrace.keyed import key_id_of, load_digest_key


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("digest", help="digest a JSON document as provtrace does (to prove content)")
    parser.add_argument("file", metavar="FILE", help="a JSON document, or - for standard input")
    parser.add_argument("--digest-key", metavar="KEY", help="the evidence owner's digest key file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {args.file}: {exc.strerror}") from exc
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{args.file} is not a JSON document") from exc
    canonical = canonical_json(to_jsonable(document))
    print(f"sha256            {hashlib.sha256(canonical).hexdigest()}")
    if args.digest_key:
        try:
            key = load_digest_key(args.digest_key)
        except KeyFileError as exc:
            raise InputError(str(exc)) from exc
        print(f"keyed ({key_id_of(key)})  {hmac.new(key, canonical, hashlib.sha256).hexdigest()}")
    return 0

"""``provtrace quarantine list|show|release``: incomplete segments held back in enforce mode."""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from provtrace.cli.formats import as_json
from provtrace.cli.reconstruct import render as render_chain
from provtrace.config import default_home
from provtrace.errors import InputError
from provtrace.export.quarantine import Quarantine
from provtrace.reconstruct import reconstruct
from provtrace.release import release_entry


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("quarantine", help="inspect and release quarantined segments")
    parser.add_argument(
        "--dir",
        help="quarantine directory (default $PROVTRACE_QUARANTINE_DIR, else under $PROVTRACE_HOME)",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="list|show|release")
    listing = actions.add_parser("list", help="list quarantined segments")
    listing.add_argument("--all", action="store_true", help="include released ones")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    show = actions.add_parser("show", help="show one quarantined segment")
    show.add_argument("id")
    show.add_argument("--format", choices=("text", "markdown", "json", "html"), default="text")
    release = actions.add_parser("release", help="forward a segment with its verdict, who and why")
    release.add_argument("id")
    release.add_argument("--by", default=None, help="who releases it (default: the login name)")
    release.add_argument("--reason", required=True, help="why it is released")
    release.add_argument("--endpoint", help="OTLP/HTTP endpoint to forward to")
    release.add_argument("--archive", help="archive directory to forward to (name one or both)")
    release.add_argument(
        "--signing-key",
        help="Ed25519 private key that signs the release seal (default $PROVTRACE_SIGNING_KEY)",
    )
    parser.set_defaults(run=run)


def _store(args: argparse.Namespace) -> Quarantine:
    """The quarantine to inspect. One named by --dir or $PROVTRACE_QUARANTINE_DIR must exist (a
    typo must not look like an empty quarantine); the default one exists once something was held."""
    named = args.dir or os.environ.get("PROVTRACE_QUARANTINE_DIR")
    directory = Path(named) if named else default_home() / "quarantine"
    if (named or directory.exists()) and not directory.is_dir():
        raise InputError(f"quarantine directory {directory} does not exist (or is not a directory)")
    return Quarantine(directory)


def run(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.action == "list":
        entries = store.list(include_released=args.all)
        if args.format == "json":
            print(
                as_json(
                    [
                        {
                            "id": e.id,
                            "trace_id": e.trace_id,
                            "created_at": e.created_at,
                            "codes": e.codes,
                            "spans": len(e.records),
                            "released": e.released,
                        }
                        for e in entries
                    ]
                )
            )
        else:
            for e in entries:
                state = f"released by {e.released['by']}" if e.released else "held"
                print(f"{e.id}  {e.created_at}  {len(e.records)} span(s)  {', '.join(e.codes)}  {state}")
        return 0
    entry = store.get(args.id)
    if args.action == "show":
        if args.format == "json":
            print(
                as_json(
                    {
                        "id": entry.id,
                        "trace_id": entry.trace_id,
                        "violations": list(entry.violations),
                        "chain": reconstruct(entry.trace_id, entry.records).as_json(),
                    }
                )
            )
            return 0
        print(f"quarantined {entry.created_at} ({entry.reason}); seal #{entry.seal_seq} of {entry.stream}")
        for violation in entry.violations:
            print(f"  {violation['code']}: {violation.get('message', '')} {violation.get('span_id', '')}")
        chain = reconstruct(entry.trace_id, entry.records)
        print(render_chain(chain, args.format, source=f"quarantine entry {entry.id}"), end="")
        return 0
    return _release(args, store, entry.id)


def _release(args: argparse.Namespace, store: Quarantine, entry_id: str) -> int:
    by = args.by or getpass.getuser()
    if not args.reason.strip():
        raise InputError("--reason must say why the segment is released")
    delivered = release_entry(
        store,
        entry_id,
        by=by,
        reason=args.reason,
        endpoint=args.endpoint,
        archive_dir=args.archive,
        signing_key=args.signing_key,
    )
    print(
        f"released {entry_id} by {by}"
        + ("" if delivered else " (kept in the spool: destination unreachable)")
    )
    return 0 if delivered else 1

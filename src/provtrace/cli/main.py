"""Entry point of the ``provtrace`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from provtrace.__about__ import __version__
from provtrace.cli import (
    digest,
    doctor,
    export,
    find,
    keygen,
    keyring,
    prove,
    quarantine,
    reconstruct,
    verify,
)
from provtrace.errors import ProvtraceError

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="provtrace", description="Reconstruct and verify provenance evidence.")
    parser.add_argument("--version", action="version", version=f"provtrace {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for module in (reconstruct, verify, prove, find, export, quarantine, keygen, keyring, doctor, digest):
        module.add_parser(commands)
    return parser


def one_line(text: str) -> str:
    """``text`` as one printable line: messages may quote input, which may hold line breaks or
    terminal control sequences."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ProvtraceError as exc:
        print(f"provtrace: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last safety net: one line, never a traceback
        print(
            f"provtrace: error: cannot read the input ({type(exc).__name__}: {one_line(str(exc))}); "
            "this is a provtrace bug, please report it",
            file=sys.stderr,
        )
        return EXIT_USAGE

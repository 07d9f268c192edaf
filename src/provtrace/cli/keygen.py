"""``provtrace keygen``: an Ed25519 key pair for signing seals."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from provtrace.errors import InputError
from provtrace.integrity import write_key_pair


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("keygen", help="write an Ed25519 signing key pair")
    parser.add_argument("--out", default="provtrace-signing", help="path prefix (default provtrace-signing)")
    parser.add_argument("--force", action="store_true", help="replace existing files")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    prefix = str(args.out)
    if not prefix.strip() or prefix.endswith(("/", os.sep)) or Path(prefix).name in ("", ".", ".."):
        raise InputError(
            "--out needs a path prefix such as keys/agent (for keys/agent.key and keys/agent.pub), "
            f"got {prefix!r}"
        )
    private = Path(f"{args.out}.key")
    public = Path(f"{args.out}.pub")
    try:
        key_id = write_key_pair(private, public, overwrite=args.force)
    except FileExistsError as exc:
        raise InputError(str(exc)) from exc
    except OSError as exc:
        raise InputError(f"cannot write the key pair: {exc.strerror}") from exc
    print(f"private key {private} (mode 0600, keep it with the agent)")
    print(f"public key  {public} (give it to investigators: provtrace verify --public-key {public})")
    print(f"key id      {key_id}")
    return 0

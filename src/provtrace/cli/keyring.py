"""``provtrace keyring``: the investigator's list of trusted keys, with validity and revocation.

``add`` puts a PEM public key in (with an optional validity period), ``revoke`` marks a key
compromised from a given time, ``transit`` imports every version of an OpenBao/Vault transit key
(each valid from its creation until the next version's creation plus a grace period, the time
the agents take to pick up a rotation), ``show`` lists them. Pass the file to ``verify``
wherever a public key goes: ``--public-key KEYRING``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from provtrace.errors import InputError
from provtrace.keyring import TrustedKey, iso, load_trusted, parse_iso, save_keyring

DEFAULT_GRACE_S = 300.0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("keyring", help="manage the trusted public keys verify uses")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="trust a PEM public key")
    add.add_argument("keyring", metavar="KEYRING")
    add.add_argument("--public-key", metavar="FILE", required=True)
    add.add_argument("--not-before", metavar="TIME")
    add.add_argument("--not-after", metavar="TIME")
    add.add_argument("--label", default="")
    revoke = actions.add_parser("revoke", help="distrust a key from a given time on")
    revoke.add_argument("keyring", metavar="KEYRING")
    revoke.add_argument("key_id", metavar="KEY_ID")
    revoke.add_argument(
        "--at", metavar="TIME", required=True, help="when the key was (or may have been) compromised"
    )
    transit = actions.add_parser("transit", help="import every version of a transit signing key")
    transit.add_argument("keyring", metavar="KEYRING")
    transit.add_argument("--address", required=True, help="OpenBao/Vault address, e.g. http://127.0.0.1:8200")
    transit.add_argument("--key", required=True, help="transit key name")
    transit.add_argument("--mount", default="transit")
    transit.add_argument(
        "--grace", type=float, default=DEFAULT_GRACE_S, help="seconds a retired version stays valid"
    )
    show = actions.add_parser("show", help="list the keys")
    show.add_argument("keyring", metavar="KEYRING")
    parser.set_defaults(run=run)


def _load(path: str) -> list[TrustedKey]:
    return load_trusted(path) if Path(path).exists() else []


def _merge(keys: list[TrustedKey], new: TrustedKey) -> list[TrustedKey]:
    """Replace the entry of the same key (keeping a revocation already recorded)."""
    old = next((k for k in keys if k.key_id == new.key_id), None)
    if old is not None and old.revoked_at_ns is not None and new.revoked_at_ns is None:
        new = TrustedKey(**{**new.__dict__, "revoked_at_ns": old.revoked_at_ns})
    return [k for k in keys if k.key_id != new.key_id] + [new]


def run(args: argparse.Namespace) -> int:
    keys = _load(args.keyring)
    if args.action == "show":
        for key in keys:
            period = f"{iso(key.not_before_ns) if key.not_before_ns else '-'} .. "
            period += iso(key.not_after_ns) if key.not_after_ns else "-"
            revoked = f"  REVOKED at {iso(key.revoked_at_ns)}" if key.revoked_at_ns else ""
            print(f"{key.key_id}  {period}  {key.label}{revoked}")
        return 0
    if args.action == "add":
        (key,) = load_trusted(args.public_key)[:1]
        keys = _merge(
            keys,
            TrustedKey(
                key.key_id,
                key.public_key,
                parse_iso(args.not_before, "--not-before") if args.not_before else None,
                parse_iso(args.not_after, "--not-after") if args.not_after else None,
                label=args.label,
            ),
        )
    elif args.action == "revoke":
        found = next((k for k in keys if k.key_id == args.key_id), None)
        if found is None:
            raise InputError(f"{args.keyring} holds no key {args.key_id}")
        keys = _merge(keys, TrustedKey(**{**found.__dict__, "revoked_at_ns": parse_iso(args.at, "--at")}))
    else:
        for key in transit_keys(args.address, args.mount, args.key, grace_s=args.grace):
            keys = _merge(keys, key)
    save_keyring(Path(args.keyring), keys)
    print(f"{args.keyring}: {len(keys)} key(s)")
    return 0


def transit_keys(address: str, mount: str, name: str, *, grace_s: float) -> list[TrustedKey]:
    """Every version of a transit key: valid from its creation until the next version's creation
    plus ``grace_s``. The token comes from $BAO_TOKEN or $VAULT_TOKEN (reading public keys)."""
    from provtrace.signing.transit import TOKEN_ENV, TransitSigner

    token = next((os.environ[n] for n in TOKEN_ENV if os.environ.get(n)), "")
    versions = TransitSigner(address, name, mount=mount, token=token).versions()
    numbers = sorted(versions)
    out = []
    for position, number in enumerate(numbers):
        key_id, public, created = versions[number]
        successor = versions[numbers[position + 1]][2] if position + 1 < len(numbers) else None
        not_after = successor + int(grace_s * 1e9) if successor is not None else None
        out.append(TrustedKey(key_id, public, created, not_after, label=f"{mount}/{name} v{number}"))
    return out

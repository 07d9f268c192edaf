"""The public keys an investigator trusts, with when each was valid and whether it was revoked.

A keyring is a JSON file (``provtrace keyring``) listing Ed25519 public keys by key id, each with
an optional validity period (``not_before``, ``not_after``: rotation) and an optional revocation
time (``revoked_at``: the key is known or feared compromised from then on). A plain PEM public key
is a keyring of one key valid forever. ``verify`` judges every signature by the key's entry: a
seal dated outside its key's period is a finding, and a seal signed by a revoked key is trusted
only when an RFC 3161 time-stamp proves it existed before the revocation (a thief of the key can
date a seal as they like, but cannot get a TSA to stamp the past).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as _dt
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from provtrace.checkpoint import raw_public_key
from provtrace.errors import InputError, KeyFileError
from provtrace.signing import key_id_of

FORMAT = "provtrace-keyring/v1"


@dataclasses.dataclass(frozen=True)
class TrustedKey:
    key_id: str
    public_key: Ed25519PublicKey
    not_before_ns: int | None = None
    not_after_ns: int | None = None
    revoked_at_ns: int | None = None
    label: str = ""

    def period_problem(self, at_ns: int) -> str:
        """Why a signature dated ``at_ns`` falls outside this key's validity, or ""."""
        if self.not_before_ns is not None and at_ns < self.not_before_ns:
            return f"dated {iso(at_ns)}, before key {self.key_id} was valid ({iso(self.not_before_ns)})"
        if self.not_after_ns is not None and at_ns > self.not_after_ns:
            return f"dated {iso(at_ns)}, after key {self.key_id} was retired ({iso(self.not_after_ns)})"
        return ""

    def as_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "public_key": base64.b64encode(raw_public_key(self.public_key)).decode(),
            "not_before": iso(self.not_before_ns) if self.not_before_ns is not None else None,
            "not_after": iso(self.not_after_ns) if self.not_after_ns is not None else None,
            "revoked_at": iso(self.revoked_at_ns) if self.revoked_at_ns is not None else None,
            "label": self.label,
        }


@dataclasses.dataclass(frozen=True)
class Keys:
    """Public keys the investigator trusts, by key id; ``given`` says whether any were supplied."""

    by_id: Mapping[str, Ed25519PublicKey]
    given: bool
    entries: Mapping[str, TrustedKey] = dataclasses.field(default_factory=dict)
    tsa_roots: tuple[x509.Certificate, ...] = ()  # time-stamping authorities trusted for time

    @classmethod
    def of(
        cls, keys: Iterable[TrustedKey], *, given: bool = True, tsa_roots: Iterable[x509.Certificate] = ()
    ) -> Keys:
        entries = {key.key_id: key for key in keys}
        return cls({k: v.public_key for k, v in entries.items()}, given, entries, tuple(tsa_roots))


def iso(ns: int) -> str:
    moment = _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str, what: str) -> int:
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise InputError(f"{what}: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return int(moment.timestamp() * 1_000_000) * 1000


def load_trusted(path: str | os.PathLike[str]) -> list[TrustedKey]:
    """The keys of a keyring file or of one PEM public key."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read public key {path}: {exc.strerror}") from None
    if data.lstrip().startswith(b"{"):
        return _parse_keyring(data, str(path))
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path} is neither a PEM public key nor a provtrace keyring") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}; provtrace seals use Ed25519 keys")
    return [TrustedKey(key_id_of(key), key)]


def _parse_keyring(data: bytes, where: str) -> list[TrustedKey]:
    try:
        document = json.loads(data)
    except ValueError:
        raise KeyFileError(f"{where} is not valid JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeyFileError(f"{where} is not a provtrace keyring (format {FORMAT})")
    keys = []
    for index, entry in enumerate(document.get("keys") or []):
        what = f"{where}: key {index}"
        if not isinstance(entry, dict):
            raise KeyFileError(f"{what} is not an object")
        try:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["public_key"], validate=True))
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise KeyFileError(f"{what} has no base64 Ed25519 public_key") from None
        key_id = key_id_of(public)
        if entry.get("key_id", key_id) != key_id:
            raise KeyFileError(
                f"{what}: key_id {entry.get('key_id')} is not the id of its public key ({key_id})"
            )

        def when(name: str, entry: dict[str, Any] = entry, what: str = what) -> int | None:
            value = entry.get(name)
            return None if value is None else parse_iso(str(value), f"{what} {name}")

        keys.append(
            TrustedKey(
                key_id,
                public,
                when("not_before"),
                when("not_after"),
                when("revoked_at"),
                str(entry.get("label", "")),
            )
        )
    return keys


def save_keyring(path: Path, keys: Iterable[TrustedKey]) -> None:
    document = {"format": FORMAT, "keys": [key.as_json() for key in keys]}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

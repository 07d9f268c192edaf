"""Signing through the OpenBao / HashiCorp Vault transit engine: the private key never enters
the agent's process, which holds only a token allowed to call the sign endpoint.

The signer reads the key's versions and their public keys (``GET /v1/<mount>/keys/<name>``) and
signs with an explicit version (``POST /v1/<mount>/sign/<name>`` with ``key_version``), so the
key id written into a seal is always the key that signed it. It looks for a newer version
(rotation) every ``refresh_s`` seconds. Only the standard library's HTTP client is used; the
token travels in the ``X-Vault-Token`` header and appears in no message, log or error.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from provtrace.errors import SigningError
from provtrace.signing import key_id_of

ADDRESS_ENV = ("PROVTRACE_TRANSIT_ADDR", "BAO_ADDR", "VAULT_ADDR")
TOKEN_ENV = ("PROVTRACE_TRANSIT_TOKEN", "BAO_TOKEN", "VAULT_TOKEN")
TOKEN_FILE_ENV = "PROVTRACE_TRANSIT_TOKEN_FILE"  # noqa: S105 - a variable name
MAX_REPLY_BYTES = 1024 * 1024


class _Unreachable(Exception):
    """The service could not be reached at all (as opposed to refusing a request)."""


class TransitSigner:
    def __init__(
        self,
        address: str,
        key: str,
        *,
        mount: str = "transit",
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        namespace: str | None = None,
        refresh_s: float = 60.0,
        timeout_s: float = 10.0,
    ) -> None:
        if not address.startswith(("http://", "https://")):
            raise SigningError(f"the transit address must be an http:// or https:// URL, got {address!r}")
        if token is None and token_file is None:
            raise SigningError("transit signing needs a token (token=, or token_file=)")
        self.address = address.rstrip("/")
        self.key = key
        self.mount = mount.strip("/")
        self._token = token
        self._token_file = Path(token_file) if token_file is not None else None
        self._namespace = namespace
        self._refresh_s = refresh_s
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._versions: dict[str, tuple[int, Ed25519PublicKey]] = {}  # key id -> version, key
        self._latest = ""
        self._created: dict[int, int | None] = {}
        self._refreshed = float("-inf")
        self._down_until = float("-inf")
        self._failures = 0

    @classmethod
    def from_environment(cls, spec: str) -> TransitSigner:
        """``[MOUNT/]KEY`` with the address and token from the usual environment variables."""
        mount, _, key = spec.rpartition("/")
        address = next((os.environ[name] for name in ADDRESS_ENV if os.environ.get(name)), "")
        token = next((os.environ[name] for name in TOKEN_ENV if os.environ.get(name)), None)
        if not address or not key:
            raise SigningError(
                f"transit:{spec} needs a key name and an address in ${ADDRESS_ENV[0]} "
                "(or BAO_ADDR/VAULT_ADDR)"
            )
        return cls(
            address,
            key,
            mount=mount or "transit",
            token=token,
            token_file=os.environ.get(TOKEN_FILE_ENV) or None,
            namespace=os.environ.get("VAULT_NAMESPACE") or None,
        )

    # --- the Signer protocol ----------------------------------------------------------------

    def current_key_id(self) -> str:
        with self._lock:
            due = time.monotonic() - self._refreshed >= self._refresh_s
        if due:
            try:
                self.refresh()
            except SigningError:
                with self._lock:
                    self._refreshed = time.monotonic()  # keep the known version; retry later
                if not self._latest:
                    raise
        if not self._latest:
            raise SigningError(f"transit key {self.key} is not known yet")
        return self._latest

    def public_key(self, key_id: str) -> Ed25519PublicKey:
        known = self._versions.get(key_id)
        if known is None:
            self.refresh()
            known = self._versions.get(key_id)
        if known is None:
            raise SigningError(f"transit key {self.key} has no version with id {key_id}")
        return known[1]

    def sign(self, message: bytes, key_id: str) -> bytes:
        known = self._versions.get(key_id)
        if known is None:
            raise SigningError(f"transit key {self.key} has no version with id {key_id}")
        reply = self._call(
            "POST",
            f"sign/{urllib.parse.quote(self.key, safe='')}",
            {"input": base64.b64encode(message).decode(), "key_version": known[0]},
        )
        signature = str((reply.get("data") or {}).get("signature", ""))
        prefix, _, encoded = signature.rpartition(":")
        if prefix.rpartition(":")[2] != f"v{known[0]}":
            raise SigningError(f"transit signed with another version than v{known[0]} ({prefix or 'none'})")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise SigningError("transit returned a signature that is not base64") from None
        if len(raw) != 64:
            raise SigningError("transit returned something other than an Ed25519 signature")
        return raw

    # --- key versions -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the key's versions and public keys; the newest becomes the signing key."""
        reply = self._call("GET", f"keys/{urllib.parse.quote(self.key, safe='')}")
        data = reply.get("data") or {}
        if data.get("type") != "ed25519":
            raise SigningError(
                f"transit key {self.key} is of type {data.get('type')!r}; provtrace needs ed25519"
            )
        versions: dict[str, tuple[int, Ed25519PublicKey]] = {}
        created: dict[int, int | None] = {}
        latest, latest_version = "", -1
        for number, entry in (data.get("keys") or {}).items():
            try:
                version = int(number)
                public = Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["public_key"]))
            except (KeyError, TypeError, ValueError, binascii.Error):
                raise SigningError(
                    f"transit key {self.key} version {number} has no Ed25519 public key"
                ) from None
            key_id = key_id_of(public)
            versions[key_id] = (version, public)
            created[version] = _rfc3339_ns(str(entry.get("creation_time", "")))
            if version > latest_version:
                latest, latest_version = key_id, version
        if not latest:
            raise SigningError(f"transit key {self.key} has no versions")
        with self._lock:
            self._versions.update(versions)
            self._created.update(created)
            self._latest = latest
            self._refreshed = time.monotonic()

    def versions(self) -> dict[int, tuple[str, Ed25519PublicKey, int | None]]:
        """Every version: its key id, public key and creation time (for building a keyring)."""
        self.refresh()
        return {
            version: (key_id, key, self._created.get(version))
            for key_id, (version, key) in self._versions.items()
        }

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request; after a failure to connect, requests fail at once for a while (up to
        30 s), so an unreachable service costs the sealer one timeout, not one per seal."""
        now = time.monotonic()
        if now < self._down_until:
            raise SigningError(
                f"transit at {self.address} is unreachable; retrying in {self._down_until - now:.0f}s"
            )
        try:
            reply = self._request(method, path, body)
        except _Unreachable as exc:
            self._failures += 1
            self._down_until = time.monotonic() + min(30.0, 2.0**self._failures)
            raise SigningError(str(exc)) from None
        self._failures = 0
        return reply

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        url = f"{self.address}/v1/{self.mount}/{path}"
        headers = {"X-Vault-Token": self._read_token(), "Content-Type": "application/json"}
        if self._namespace:
            headers["X-Vault-Namespace"] = self._namespace
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as reply:  # noqa: S310
                raw = reply.read(MAX_REPLY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise SigningError(f"transit {method} {self.mount}/{path} answered HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise _Unreachable(
                f"transit at {self.address} could not be reached: {type(exc).__name__}"
            ) from None
        try:
            parsed = json.loads(raw[:MAX_REPLY_BYTES])
        except ValueError:
            raise SigningError(f"transit {method} {self.mount}/{path} did not answer JSON") from None
        return parsed if isinstance(parsed, dict) else {}

    def _read_token(self) -> str:
        if self._token_file is not None:
            try:
                return self._token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SigningError(f"cannot read the transit token file: {exc.strerror}") from None
        return self._token or ""

    def __repr__(self) -> str:
        return f"TransitSigner({self.address!r}, key={self.key!r}, mount={self.mount!r})"


def _rfc3339_ns(text: str) -> int | None:
    """An RFC 3339 time with up to nanoseconds (as OpenBao writes it) in Unix nanoseconds."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        return None
    zone = "+00:00" if match[3] == "Z" else match[3]
    moment = datetime.datetime.fromisoformat(match[1] + zone)
    return int(moment.timestamp()) * 10**9 + int((match[2] or "0").ljust(9, "0"))
